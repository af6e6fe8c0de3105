"""A running service sends to verified destinations only, and picks up a verification at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.service.app import Service
from notifier.storage import Store
from notifier.storage.destinations import Destinations
from tests.conftest import wait_for
from tests.integration.backends.peers_email import SmtpPeer

from .conftest import GIT, World, seed, service_config

pytestmark = pytest.mark.integration


def test_pending_addresses_get_nothing_and_verified_ones_get_mail(
        tmp_path: Path, smtp: SmtpPeer) -> None:
    config = service_config(tmp_path, smtp)
    seed(config, [
        {"name": "alice", "emails": []},
        {"name": "bob", "emails": ["bob@example.org"]},
        {"name": "carol", "emails": []},
    ], [{"user": name, "name": "git", "track": {"kind": "topics", "patterns": [GIT]},
         "destinations": ["email"]} for name in ("alice", "bob", "carol")])
    with Store.from_config(config) as store:
        dests = Destinations(store)
        _, alice_link = dests.add("alice", "email", "alice-new@example.org")
        # Bob's settings name his pending address (as a hand edit could): it is passed over.
        dests.add("bob", "email", "bob-new@example.org")
        dests.set_delivery("bob", {"email": {"address": "bob-new@example.org"}})
        _, carol_link = dests.add("carol", "email", "carol-new@example.org")
        assert dests.confirm_link(carol_link) is not None
    world = World(config, smtp, lambda **kw: Service(config, **kw))
    try:
        world.start()
        world.publish("one")
        wait_for(lambda: world.subjects("carol-new@example.org") == ["[git] one"],
                 "carol's verified address to get the mail")
        wait_for(lambda: world.subjects("bob@example.org") == ["[git] one"],
                 "bob's own address to get the mail")
        assert world.subjects("alice-new@example.org") == []
        assert world.subjects("bob-new@example.org") == []
        everyone = {rcpt for m in smtp.handler.messages for rcpt in m.rcpt_tos}
        assert everyone == {"carol-new@example.org", "bob@example.org"}

        # Alice confirms while the service runs: her next mail reaches the address.
        service = world.service
        assert service is not None
        assert Destinations(service.store).confirm_link(alice_link) is not None
        wait_for(lambda: service.changes.seen >= service.store.last_change(),
                 "the service to apply the change")
        world.publish("two")
        wait_for(lambda: world.subjects("alice-new@example.org") == ["[git] two"],
                 "alice's address, verified now, to get the next mail")
        wait_for(lambda: world.subjects("bob@example.org") == ["[git] one", "[git] two"],
                 "bob's second mail")
        assert world.subjects("bob-new@example.org") == []
    finally:
        if world.publisher is not None:
            world.publisher.close()
        if world.service is not None:
            world.service.stop()
