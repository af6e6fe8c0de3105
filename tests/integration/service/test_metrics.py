"""The metrics add up: by destination, everything queued ends sent (or dead), however it goes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import wait_for
from tests.integration.service.conftest import GIT, World

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sender_process", [False, True])
def test_every_queued_notification_is_counted_sent_live_stream_and_digests_too(
        world_for: Callable[..., World], sender_process: bool) -> None:
    world = world_for(sender_process=sender_process)
    service = world.make()
    world.service = service
    # alice also gets desktop notifications: through her live stream (no [dbus] user here).
    service.store.upsert_rules([{"user": "alice", "name": "git", "track": {
        "kind": "topics", "patterns": [GIT]}, "destinations": ["email", "rss", "desktop"]}])
    service.changes.poll()
    service.start()
    wait_for(lambda: world.health()[0] == 200, "the service to be ready")
    world.publish("one", "two")
    wait_for(lambda: set(world.outbox_states()) <= {"sent", "digested"}
             and world.outbox_states().get("digested") == 2, "everything delivered")

    def by_destination(name: str) -> dict[str, float]:
        return {d: world.metric(name, destination=d) for d in ("email", "rss", "desktop")}

    queued = by_destination("notifier_notifications_queued_total")
    digests = len([m for m in world.smtp.handler.messages if "bob@example.org" in m.rcpt_tos])
    assert queued == {"email": 2 + 2 + digests, "rss": 2, "desktop": 2}
    wait_for(lambda: by_destination("notifier_notifications_sent_total") == queued,
             "sent to add up to queued")
    assert by_destination("notifier_notifications_dead_total") == dict.fromkeys(queued, 0.0)
    text = service.metrics.render().decode()
    assert 'backend="' not in text  # one label name for the destination, everywhere
    assert "notifier_component_restarts_total" in text
