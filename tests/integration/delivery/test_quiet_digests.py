"""Quiet hours in the pipeline's first state and the digest scheduler, on a real database.

Erin's quiet hours are 22:00 to 07:00 UTC; her email has a daily digest of its
own; IRC and Web Push have none. The clock is the test's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from notifier.config import config_from_dict
from notifier.delivery.digests import DigestScheduler
from notifier.delivery.pipeline import Pipeline
from notifier.render import Renderer
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration

#: 2027-01-15 08:00 UTC, the Clock's default
MORNING = 1_800_000_000.0
HOUR = 3600.0
ERIN = {"name": "erin", "emails": ["erin@example.org"], "ircnicks": ["erin"], "groups": [],
        "feed_token": "t",
        "delivery": {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "UTC"},
                     "email": {"digest": {"every": "daily@08:00"}}}}


@pytest.fixture
def utc() -> Iterator[None]:
    """The server's own zone is UTC, for the daily digest's local 08:00."""
    before = time.tzname
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()
    assert time.tzname == before


def test_quiet_hours_hold_what_interrupts_and_release_one_digest_per_destination(
        store: Store, utc: None) -> None:
    clock = Clock(MORNING + 15 * HOUR)  # 23:00
    outbox = Outbox(store, clock)
    config = config_from_dict({})
    renderer = Renderer(config, secret=b"s" * 32)
    pipeline = Pipeline(config, outbox, None, None, renderer,  # type: ignore[arg-type]
                        {"erin": ERIN}.get, clock=clock)
    states = {(destination, severity): pipeline.first_state(ERIN, destination, severity)
              for destination in ("email", "irc", "webpush", "rss", "desktop")
              for severity in ("info", "error")}
    assert states == {
        ("email", "info"): "held", ("email", "error"): "held",  # its own digest, as before
        ("irc", "info"): "held", ("irc", "error"): "pending",
        ("webpush", "info"): "held", ("webpush", "error"): "pending",
        ("rss", "info"): "pending", ("rss", "error"): "pending",  # the feed is a record
        ("desktop", "info"): "sent", ("desktop", "error"): "sent",  # the live stream's
    }
    clock.now = MORNING + 2 * HOUR  # 10:00: not quiet
    assert pipeline.first_state(ERIN, "irc", "info") == "pending"

    for i, hour in enumerate((15.0, 20.5)):  # 23:00, then 04:30
        clock.now = MORNING + hour * HOUR
        msg = f"m{i}"
        outbox.record([envelope(msg)], [(note("erin", msg, destination), "held")
                                        for destination in ("email", "irc", "webpush")])
    digests = DigestScheduler(outbox, renderer, {"erin": ERIN}.get, clock=clock)
    assert digests.run_once() == 0
    clock.now = MORNING + 22 * HOUR + 59 * 60  # 06:59
    assert digests.run_once() == 0
    assert DigestScheduler(outbox, renderer, {"erin": ERIN}.get,
                           clock=clock).run_once() == 0  # afresh, as after a restart

    clock.now = MORNING + 23 * HOUR  # 07:00: over
    assert digests.run_once() == 2
    queued = {row.destination: row for row in outbox.rows(states=["pending"])}
    assert set(queued) == {"irc", "webpush"}
    assert "2 notifications: bodhi (2)" in queued["irc"].notification.content["line"]
    assert queued["webpush"].notification.topic == "notifier.digest"
    assert {r.destination for r in outbox.rows(states=["held"])} == {"email"}
    assert len(outbox.rows(states=["digested"])) == 4
    assert digests.run_once() == 0  # nothing twice

    clock.now = MORNING + 24 * HOUR  # 08:00: the email's own daily digest
    assert digests.run_once() == 1
    assert outbox.rows(states=["held"]) == []


def test_quiet_hours_taken_away_send_what_is_held_on_the_default_schedule(
        store: Store) -> None:
    clock = Clock(MORNING + 15 * HOUR)
    outbox = Outbox(store, clock)
    renderer = Renderer(config_from_dict({}), secret=b"s" * 32)
    loud: dict[str, Any] = {**ERIN, "delivery": None}
    outbox.record([envelope("m")], [(note("erin", "m", "irc"), "held")])
    digests = DigestScheduler(outbox, renderer, {"erin": loud}.get, clock=clock)
    clock.now += 2 * HOUR  # the default hourly digest
    assert digests.run_once() == 1
