"""Destinations on both databases (SQLite and the local PostgreSQL): the whole life of one."""

from __future__ import annotations

import pytest

from notifier.storage import Store
from notifier.storage.destinations import DestinationError, Destinations

pytestmark = pytest.mark.integration


def test_add_prove_list_remove(store: Store) -> None:
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]},
                        {"name": "bob", "ircnicks": ["bob"]}])
    dests = Destinations(store)
    mail, secret = dests.add("alice", "email", "work@example.org")
    nick, code = dests.add("alice", "irc", "alice_w")
    with pytest.raises(DestinationError):
        dests.add("alice", "email", "work@example.org")
    with pytest.raises(DestinationError) as info:
        dests.confirm_code("alice", nick.id, "WRONG")
    assert info.value.attempts_left == 4
    assert dests.confirm_code("alice", nick.id, code) is not None
    assert dests.confirm_link(secret) is not None
    assert dests.confirm_link(secret) is None
    assert [(d.address, d.state) for d in dests.listing("alice")] == [
        ("alice@example.org", "verified"), ("work@example.org", "verified"),
        ("alice_w", "verified")]
    records = dests.deliverable_all(store.list_users())
    assert records[0]["emails"] == ["alice@example.org", "work@example.org"]
    assert records[0]["ircnicks"] == ["alice_w"] and records[1]["ircnicks"] == ["bob"]
    assert dests.set_delivery("alice", {"irc": {"nick": "alice_w"}})
    assert dests.remove("alice", nick.id)
    assert dests.delivery("alice") == {"irc": {}}
    assert dests.get("alice", mail.id) is not None and dests.get("bob", mail.id) is None
