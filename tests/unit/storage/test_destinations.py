"""Destinations: pending until proved, secrets used once, and what delivery sees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.delivery.settings import address_for
from notifier.storage import Store
from notifier.storage.destinations import (
    CODE_TTL,
    LINK_TTL,
    MAX_ATTEMPTS,
    RESEND_AFTER,
    DestinationError,
    Destinations,
    code_hash,
)
from notifier.storage.schema import destinations as table


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'n.db'}", clock=clock) as s:
        s.import_users([{"name": "alice", "emails": ["alice@example.org"],
                         "ircnicks": ["alice"]},
                        {"name": "bob", "emails": ["bob@example.org"]}])
        yield s


@pytest.fixture
def dests(store: Store, clock: Clock) -> Destinations:
    return Destinations(store, clock=clock)


def shaped(store: Store, dests: Destinations, name: str = "alice") -> dict:
    record = store.get_user(name)
    assert record is not None
    return dests.deliverable(record)


def test_the_record_addresses_are_listed_verified(dests: Destinations) -> None:
    listed = dests.listing("alice")
    assert [(d.kind, d.address, d.state, d.origin) for d in listed] == [
        ("email", "alice@example.org", "verified", "record"),
        ("irc", "alice", "verified", "record")]


def test_listing_follows_the_record(store: Store, dests: Destinations) -> None:
    dests.listing("alice")
    store.import_users([{"name": "alice", "emails": ["new@example.org"], "ircnicks": []}])
    assert [d.address for d in dests.listing("alice")] == ["new@example.org"]


def test_a_new_address_is_pending_and_never_delivered(store: Store,
                                                      dests: Destinations) -> None:
    before = store.last_change()
    added, secret = dests.add("alice", "email", "work@example.org")
    assert added.state == "pending" and added.origin == "person"
    assert len(secret) >= 43  # 256 bits, URL-safe
    assert store.last_change() > before  # a running service reads alice again
    user = shaped(store, dests)
    assert user["emails"] == ["alice@example.org"]
    # Not even when her delivery settings name it.
    dests.set_delivery("alice", {"email": {"address": "work@example.org",
                                           "digest": {"every": "1h"}}})
    user = shaped(store, dests)
    assert address_for(user, "email") == "alice@example.org"
    assert user["delivery"]["email"] == {"digest": {"every": "1h"}}


def test_the_link_verifies_once(store: Store, dests: Destinations) -> None:
    added, secret = dests.add("alice", "email", "work@example.org")
    assert dests.link(secret) == added
    confirmed = dests.confirm_link(secret)
    assert confirmed is not None and confirmed.state == "verified"
    assert dests.confirm_link(secret) is None
    assert dests.link(secret) is None
    assert shaped(store, dests)["emails"] == ["alice@example.org", "work@example.org"]


def test_a_link_expires(dests: Destinations, clock: Clock) -> None:
    _, secret = dests.add("alice", "email", "work@example.org")
    clock.now += LINK_TTL + 1
    assert dests.confirm_link(secret) is None
    assert dests.listing("alice")[-1].state == "pending"


def test_a_wrong_or_mangled_link_finds_nothing(dests: Destinations) -> None:
    _, secret = dests.add("alice", "email", "work@example.org")
    assert dests.confirm_link(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert dests.confirm_link("") is None


def test_the_code_verifies_whatever_its_case_and_dashes(store: Store,
                                                        dests: Destinations) -> None:
    added, code = dests.add("alice", "irc", "alice_work")
    assert len(code.replace("-", "")) == 26  # 128 bits in base32
    done = dests.confirm_code("alice", added.id, " " + code.lower().replace("-", " ") + " ")
    assert done is not None and done.state == "verified"
    assert shaped(store, dests)["ircnicks"] == ["alice", "alice_work"]
    with pytest.raises(DestinationError) as info:
        dests.confirm_code("alice", added.id, code)
    assert info.value.reason == "not-pending"


def test_wrong_codes_are_limited(dests: Destinations) -> None:
    added, code = dests.add("alice", "irc", "alice_work")
    for tries in range(MAX_ATTEMPTS):
        with pytest.raises(DestinationError) as info:
            dests.confirm_code("alice", added.id, "WRONG")
        assert info.value.reason == "wrong"
        assert info.value.attempts_left == MAX_ATTEMPTS - tries - 1
    # Spent: even the right code no longer works.
    with pytest.raises(DestinationError) as info:
        dests.confirm_code("alice", added.id, code)
    assert info.value.reason == "spent"


def test_a_code_expires_and_a_new_one_replaces_it(dests: Destinations, clock: Clock) -> None:
    added, code = dests.add("alice", "irc", "alice_work")
    with pytest.raises(DestinationError) as info:
        dests.renew("alice", added.id)
    assert info.value.reason == "too-soon" and 0 < info.value.retry_after <= RESEND_AFTER
    clock.now += CODE_TTL + 1
    with pytest.raises(DestinationError) as info:
        dests.confirm_code("alice", added.id, code)
    assert info.value.reason == "expired"
    renewed = dests.renew("alice", added.id)
    assert renewed is not None
    _, fresh = renewed
    with pytest.raises(DestinationError):
        dests.confirm_code("alice", added.id, code)
    assert dests.confirm_code("alice", added.id, fresh) is not None


def test_only_hashes_are_stored(store: Store, dests: Destinations) -> None:
    _, code = dests.add("alice", "irc", "alice_work")
    _, secret = dests.add("alice", "email", "work@example.org")
    with store.engine.connect() as conn:
        rows = conn.execute(table.select()).all()
    text = repr(rows)
    assert code not in text and code.replace("-", "") not in text and secret not in text
    assert code_hash(code) in text


def test_another_users_destination_is_not_found(dests: Destinations) -> None:
    added, code = dests.add("alice", "irc", "alice_work")
    assert dests.get("bob", added.id) is None
    assert dests.confirm_code("bob", added.id, code) is None
    assert dests.remove("bob", added.id) is False
    assert dests.get("alice", added.id) == added


def test_duplicates_and_record_addresses_are_refused(dests: Destinations) -> None:
    dests.add("alice", "email", "work@example.org")
    for address in ("work@example.org", "ALICE@example.org"):
        with pytest.raises(DestinationError) as info:
            dests.add("alice", "email", address)
        assert info.value.reason == "exists"
    record = dests.listing("alice")[0]
    with pytest.raises(DestinationError) as info:
        dests.remove("alice", record.id)
    assert info.value.reason == "from-record"


def test_removing_drops_the_setting_that_names_it(store: Store, dests: Destinations) -> None:
    added, secret = dests.add("alice", "email", "work@example.org")
    dests.confirm_link(secret)
    dests.set_delivery("alice", {"email": {"address": "work@example.org",
                                           "digest": {"every": "1h"}}})
    assert address_for(shaped(store, dests), "email") == "work@example.org"
    assert dests.remove("alice", added.id) is True
    assert dests.delivery("alice") == {"email": {"digest": {"every": "1h"}}}
    assert address_for(shaped(store, dests), "email") == "alice@example.org"


def test_deliverable_all_matches_one_by_one(store: Store, dests: Destinations) -> None:
    added, secret = dests.add("alice", "email", "work@example.org")
    dests.confirm_link(secret)
    dests.add("bob", "irc", "bobby")
    records = store.list_users()
    assert dests.deliverable_all(records) == [dests.deliverable(r) for r in records]
    assert dests.deliverable_all(records)[1]["ircnicks"] == []


def test_the_record_taking_a_pending_address_verifies_it(store: Store,
                                                         dests: Destinations) -> None:
    dests.add("alice", "email", "work@example.org")
    store.import_users([{"name": "alice", "emails": ["alice@example.org",
                                                     "work@example.org"]}])
    listed = {d.address: d for d in dests.listing("alice")}
    assert listed["work@example.org"].state == "verified"
    assert listed["work@example.org"].origin == "record"


def test_a_new_user_of_an_old_name_inherits_nothing(store: Store, dests: Destinations,
                                                    clock: Clock) -> None:
    _, secret = dests.add("alice", "email", "work@example.org")
    dests.confirm_link(secret)
    assert "work@example.org" in shaped(store, dests)["emails"]
    store.remove_user("alice")
    clock.now += 10
    store.import_users([{"name": "alice", "emails": ["someone@example.org"]}])
    assert shaped(store, dests)["emails"] == ["someone@example.org"]
    assert dests.deliverable_all(store.list_users())[0]["emails"] == ["someone@example.org"]
    assert [d.address for d in dests.listing("alice")] == ["someone@example.org"]


def test_listing_writes_only_when_the_record_changed(store: Store,
                                                     dests: Destinations) -> None:
    dests.listing("alice")
    before = store.last_change()
    dests.listing("alice")
    assert store.last_change() == before
    store.import_users([{"name": "alice", "ircnicks": []}])
    mark = store.last_change()
    assert [d.address for d in dests.listing("alice")] == ["alice@example.org"]
    assert store.last_change() > mark
