"""One user's digest that fails never delays or stops anyone else's; each problem is logged once.

The outbox is a real database and the renderer the real one; the users are
records as they may be in the database anyway (an older version, a hand
edit), whatever ``users import`` accepts today.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from notifier.config import config_from_dict
from notifier.delivery.digests import DigestScheduler
from notifier.render import Renderer
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration


def user(name: str, digest: Any) -> dict[str, Any]:
    return {"name": name, "emails": [f"{name}@example.org"], "ircnicks": [], "groups": [],
            "delivery": {"email": {"digest": digest}}, "feed_token": "t"}


USERS = {
    "aaron": user("aaron", {"every": "1 hour"}),  # not a duration: the default applies
    "abby": user("abby", {"every": "1h"}),  # her digest fails to render
    "bert": user("bert", "hourly"),  # not even a table
    "beth": user("beth", {"every": "1h", "max_items": "lots"}),
    "carl": user("carl", {"every": "1h"}),  # all good
}


@pytest.fixture
def scheduler(store: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    clock = Clock()
    outbox = Outbox(store, clock)
    config = config_from_dict({})
    renderer = Renderer(config, secret=b"s" * 32)
    render_digest = renderer.render_digest
    failing = {"abby"}

    def render(destination: str, user: Any, items: Any, address: str) -> Any:
        if user["name"] in failing:
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "a template bug")
        return render_digest(destination, user, items, address)

    monkeypatch.setattr(renderer, "render_digest", render)
    queued: list[tuple[str, str, int]] = []
    digests = DigestScheduler(outbox, renderer, USERS.get,
                              on_result=lambda d, outcome, n: queued.append((d, outcome, n)))
    return clock, outbox, digests, queued, failing


def hold(outbox: Outbox, msg_id: str) -> None:
    outbox.record([envelope(msg_id)], [(note(name, msg_id), "held") for name in USERS])


def digests_for(outbox: Outbox) -> set[str]:
    return {row.user for row in outbox.rows(states=["pending"])}


def test_a_failing_digest_stops_nobody_else_and_is_logged_once(
        scheduler: Any, caplog: pytest.LogCaptureFixture) -> None:
    clock, outbox, digests, queued, _failing = scheduler
    hold(outbox, "m1")
    hold(outbox, "m2")
    assert digests.run_once() == 0  # nothing due yet in this hour
    clock.now += 3600
    # abby's fails (every pass), everyone else's goes: bad settings fall back to 1h, 100.
    assert digests.run_once() == 4
    assert digests_for(outbox) == {"aaron", "bert", "beth", "carl"}
    assert {row.user for row in outbox.rows(states=["held"])} == {"abby"}  # kept, not lost
    for _ in range(3):
        clock.now += 3600
        digests.run_once()
    # Counted for the metrics: two items sent inside each digest, each digest queued.
    assert sorted(queued) == sorted([("email", "sent", 2), ("email", "queued", 1)] * 4)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 4, errors  # one per user and problem, not one per pass
    assert any("aaron" in e and "'1 hour'" in e and "using every '1h'" in e for e in errors)
    assert any("abby" in e and "UnicodeEncodeError" in e and "other digests go on" in e
               for e in errors)
    assert any("beth" in e and "'lots'" in e for e in errors)
    assert any(e.startswith("digest for bert") for e in errors)


def test_a_digest_that_works_again_is_said_so_and_a_new_problem_is_logged(
        scheduler: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    clock, outbox, digests, _queued, failing = scheduler
    caplog.set_level(logging.INFO)
    hold(outbox, "m1")
    clock.now += 3600
    digests.run_once()
    failing.clear()  # abby's digest renders now (a fixed template, say)
    clock.now += 3600
    digests.run_once()
    assert "abby" in digests_for(outbox)
    assert any("digest for abby on email: digest works again" in r.getMessage()
               for r in caplog.records)
