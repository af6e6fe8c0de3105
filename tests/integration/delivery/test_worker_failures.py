"""A backend that raises anything at all: each send is a failed attempt, dead after max_attempts.

The backends are the real ones (a Maildir, the feed store); the fault is one
of their methods made to raise what no backend should (a bug).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from notifier.backends.registry import backend_class
from notifier.config import config_from_dict
from notifier.delivery.handoff import DueQueue
from notifier.delivery.workers import BackendWorker
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.conftest import wait_for
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3


class Outcomes:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, destination: str, outcome: str, n: int) -> None:
        self.calls.append((destination, outcome, n))

    def total(self, outcome: str) -> int:
        return sum(n for _d, o, n in self.calls if o == outcome)


def make_worker(store: Store, tmp_path: Path, destination: str, clock: Clock,
                outcomes: Outcomes, queue: DueQueue | None = None) -> BackendWorker:
    config = config_from_dict({
        "database_url": store.url,
        "email": {"maildir": str(tmp_path / "Maildir")},
        "delivery": {"max_attempts": MAX_ATTEMPTS, "retry_base": 5.0, "retry_max": 60.0}})
    backend = backend_class(destination)(config)
    worker = BackendWorker(config, Outbox(store, clock), backend, batch=10, chunk=5,
                           on_result=outcomes, queue=queue)
    worker.setup()
    return worker


def record(store: Store, clock: Clock, destination: str, users: list[str]) -> None:
    Outbox(store, clock).record(
        [envelope("m1")], [(note(user, "m1", destination), "pending") for user in users])


def rows(store: Store) -> dict[str, Any]:
    return {row.user: row for row in Outbox(store).rows()}


def claimed(store: Store) -> list[str]:
    from sqlalchemy import select

    from notifier.storage.schema import outbox

    with store.engine.connect() as conn:
        return [r.user for r in conn.execute(
            select(outbox.c.user).where(outbox.c.claimed_until.is_not(None)))]


@pytest.mark.parametrize("destination, method", [("email", "send"), ("rss", "send_batch")])
def test_a_backend_raising_anything_fails_attempts_until_dead_and_never_holds_a_claim(
        store: Store, tmp_path: Path, destination: str, method: str,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    outcomes = Outcomes()
    worker = make_worker(store, tmp_path, destination, clock, outcomes)

    def broken(*args: Any) -> Any:
        raise KeyError("a bug in the backend")

    monkeypatch.setattr(worker.backend, method, broken)
    record(store, clock, destination, ["alice", "bob"])
    for attempt in range(1, MAX_ATTEMPTS + 1):
        worker._look.set()
        assert worker.run_once() is True  # it neither raises nor stops
        assert claimed(store) == []  # given back with the failure, not left claimed
        states = rows(store)
        assert {r.attempts for r in states.values()} == {attempt}
        assert {r.state for r in states.values()} == \
            {"dead" if attempt == MAX_ATTEMPTS else "failed"}
        assert all("KeyError" in (r.last_error or "") for r in states.values())
        if attempt < MAX_ATTEMPTS:
            # Backed off: not due again at once ...
            worker._look.set()
            assert worker.run_once() is False
            # ... but once its retry time came.
            clock.now += 3600
    worker._look.set()
    assert worker.run_once() is False  # dead rows are never tried again
    assert outcomes.total("failed") == 2 * (MAX_ATTEMPTS - 1)
    assert outcomes.total("dead") == 2
    assert outcomes.total("sent") == 0
    assert any(r.exc_info and "a bug in the backend" in str(r.exc_info[1])
               for r in caplog.records)  # logged with its traceback


def test_rows_from_the_queue_fail_the_same_way(store: Store, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    outcomes = Outcomes()
    queue = DueQueue("email", clock=clock)
    worker = make_worker(store, tmp_path, "email", clock, outcomes, queue=queue)
    monkeypatch.setattr(worker.backend, "send_batch", lambda notes: 1 / 0)
    _m, _n, handed = Outbox(store, clock).record_and_claim(
        [envelope("m1")], [(note("carol", "m1"), "pending")], claim={"email"})
    queue.put(handed)
    assert worker.run_once() is True
    (row,) = rows(store).values()
    assert (row.state, row.attempts) == ("failed", 1)
    assert "ZeroDivisionError" in (row.last_error or "")
    assert claimed(store) == []


def test_after_a_backend_raised_the_next_send_opens_it_afresh(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    outcomes = Outcomes()
    worker = make_worker(store, tmp_path, "email", clock, outcomes)
    opened: list[bool] = []
    setup = worker.backend.setup
    monkeypatch.setattr(worker.backend, "setup", lambda: (opened.append(True), setup())[1])
    send_batch = worker.backend.send_batch
    fail = [True]

    def flaky(notifications: Any) -> Any:
        if fail and fail.pop():
            raise OSError("connection in a bad state")
        return send_batch(notifications)

    monkeypatch.setattr(worker.backend, "send_batch", flaky)
    record(store, clock, "email", ["dave"])
    stopping = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stopping,))
    thread.start()
    try:
        wait_for(lambda: rows(store)["dave"].state == "failed", "the first attempt to fail")
        clock.now += 3600  # the retry is due
        worker.wake(database=True)
        wait_for(lambda: rows(store)["dave"].state == "sent", "the retry to be sent")
    finally:
        stopping.set()
        worker.interrupt()
        thread.join(10)
    assert rows(store)["dave"].state == "sent"
    assert opened == [True]  # closed and opened again once, after the failure
    assert outcomes.total("failed") == 1 and outcomes.total("sent") == 1


def test_a_backend_that_cannot_be_opened_again_waits_and_says_so(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from notifier.errors import TemporaryDeliveryError

    clock = Clock()
    worker = make_worker(store, tmp_path, "email", clock, Outcomes())
    tries: list[int] = []

    def no_bus() -> None:
        tries.append(1)
        raise TemporaryDeliveryError("the session bus went away")

    monkeypatch.setattr(worker.backend, "setup", no_bus)
    worker._set_up = False  # as after a failed send
    stopping = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stopping,))
    caplog.set_level(logging.INFO)
    thread.start()
    try:
        # Tried again, with backoff (0.5-1 s), without raising out of run().
        wait_for(lambda: len(tries) >= 2, "a second try to open the backend")
        assert thread.is_alive()
        assert "cannot open the email backend" in (worker.stalled() or "")
    finally:
        stopping.set()
        thread.join(10)
    assert not thread.is_alive()
    assert sum("cannot open the email backend" in r.getMessage() for r in caplog.records) == 1
