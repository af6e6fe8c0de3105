"""Hostile messages and records through a running ``notifier serve``: each costs only itself."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.storage.outbox import Outbox
from tests.conftest import wait_for
from tests.integration.rawbus import HostileWorld

pytestmark = pytest.mark.integration

TOPIC = b"org.fedoraproject.dev.hostile.thing.happened"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileWorld]:
    w = HostileWorld(tmp_path_factory.mktemp("hostile"))
    # A record as an older version or a hand edit left it: 'email' is a string.
    w.write_user("mallory", emails=["mallory@example.org"], delivery={"email": "a@b"})
    w.write_user("trudy", emails="trudy@example.org",
                 delivery={"rss": {"digest": {"every": "1 hour", "max_items": 0}}})
    w.rules(["alice"], ["rss", "irc"])  # no [irc] host: irc rows are dead at once
    w.rules(["mallory", "trudy"], ["email", "rss"])
    try:
        w.start()
        yield w
    finally:
        w.close()


HOSTILE = [
    # (frames, reason)
    ((TOPIC, b"[" * 100_000 + b"]" * 100_000), "depth"),
    ((TOPIC, b"{}"), "field"),
    ((TOPIC, b'{"msg": {}, "timestamp": 1e20}'), "field"),
    ((TOPIC, b'{"msg": {}, "timestamp": NaN}'), "number"),
    ((TOPIC, b'{"msg": {}, "timestamp": -1e18}'), "field"),
    ((TOPIC, b'{"msg": {"n": 123456789012345678901234567890}}'), "number"),
    ((TOPIC, b'{"msg": {"x": "a\\u0000b"}}'), "text"),
    ((TOPIC, b'{"msg": {"x": "\\ud800"}}'), "text"),
    ((TOPIC, b'{"msg": {}, "msg_id": 42}'), "field"),
    ((TOPIC, b'{"msg": {}, "headers": "none"}'), "field"),
    ((b"x" * 5000, b'{"msg": {}}'), "topic"),
    ((TOPIC, b'{"msg": {}, "topic": ["a"]}'), "field"),
    ((TOPIC,), "frames"),
    ((TOPIC, b"{}", b"{}"), "frames"),
    ((TOPIC, b"\xff\xfe{}"), "json"),
]


def test_each_hostile_message_is_rejected_alone(world: HostileWorld) -> None:
    assert world.publisher is not None
    rejected_before = len(world.rejected())
    good = [world.publisher.good(f"before {i}") for i in range(5)]
    for frames, _reason in HOSTILE:
        world.publisher.send(*frames)
        good.append(world.publisher.good(f"between {len(good)}"))
    good += [world.publisher.good(f"after {i}") for i in range(5)]

    world.wait_delivered(good)

    def kept() -> list[dict[str, Any]] | None:
        rows = world.rejected()[rejected_before:]
        return rows if len(rows) >= len(HOSTILE) else None

    rejected = wait_for(kept, "every hostile message kept as rejected")
    assert [r["reason"] for r in rejected] == [reason for _, reason in HOSTILE], rejected
    assert all(r["detail"] for r in rejected)
    nan = rejected[3]
    assert "NaN" in nan["detail"] and nan["payload"] == '{"msg": {}, "timestamp": NaN}'
    assert rejected[0]["size"] == 200_000 and rejected[0]["truncated"] is True
    metrics = world.serve.get("/metrics")[2].decode()
    for reason in {reason for _, reason in HOSTILE}:
        assert f'notifier_messages_rejected_total{{reason="{reason}"}}' in metrics


def test_a_bad_record_at_rest_costs_its_user_only_and_is_logged_once(
        world: HostileWorld) -> None:
    assert world.publisher is not None
    good = [world.publisher.good(f"records {i}") for i in range(5)]
    world.wait_delivered(good)
    outbox = Outbox(world.store)
    # mallory's 'email' setting is unusable: her first address is used instead.
    mails = outbox.rows(user="mallory", destination="email")
    assert {row.msg_id for row in mails} >= set(good)
    assert {row.notification.address for row in mails} == {"mallory@example.org"}
    # trudy's emails are not a list: no mail. Her digest cannot be read: her feed is not held.
    assert outbox.rows(user="trudy", destination="email") == []
    assert {item.msg_id for item in world.feeds.items("trudy", 1000)} >= set(good)
    log = world.serve.log()
    assert log.count("user mallory: 'delivery.email' is a string, not an object") == 1
    assert log.count("user trudy: 'emails' is a string, not a list") == 1
    assert log.count("user trudy: 'delivery.rss.digest': digest 'every': '1 hour' is not a "
                     "duration") == 1


def test_a_destination_without_backend_is_dead_at_once_and_said_at_start(
        world: HostileWorld) -> None:
    assert world.publisher is not None
    msg_id = world.publisher.good("for irc")
    world.wait_delivered([msg_id])
    log = world.serve.log()
    assert re.search(r"WARNING .*rules of alice send to irc, but no \[irc\] host configured",
                     log), log
    rows = Outbox(world.store).rows(user="alice", destination="irc")
    assert msg_id in {row.msg_id for row in rows}
    assert {(row.state, row.attempts, row.last_error) for row in rows} == \
        {("dead", 0, "no [irc] host configured")}
    assert world.serve.metric('notifier_notifications_dead_total{destination="irc"}') >= 1
    # Nothing waits for a backend that is not there: the lag stays true.
    wait_for(lambda: world.serve.metric("notifier_outbox_depth") == 0, "the outbox to drain")
    assert world.serve.metric("notifier_lag_seconds") == 0


def test_history_rejected_lists_reasons(world: HostileWorld, tmp_path: Path) -> None:
    assert world.publisher is not None
    world.publisher.send(TOPIC, b'{"msg": {}, "msg_id": "evil-1", "timestamp": "soon"}')
    wait_for(lambda: "evil-1" in world.cli("history", "rejected"), "evil-1 kept as rejected")
    text = world.cli("history", "rejected", "--reason", "field", "--since", "1h")
    line = next(line for line in text.splitlines() if "evil-1" in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d field evil-1 "
                    r"org\.fedoraproject\.dev\.hostile\.thing\.happened: 'timestamp' must be a "
                    r"number", line), line
    assert "evil-1" not in world.cli("history", "rejected", "--reason", "depth")
    newest = json.loads(world.cli("history", "rejected", "--json", "--limit", "1"))
    assert newest["msg_id"] == "evil-1"
