"""A worker drains a backlog in the database at full speed, not one claim per poll."""

from __future__ import annotations

import mailbox
import time
from pathlib import Path

import pytest

import notifier.delivery.workers as workers_module
from notifier.backends.registry import backend_class
from notifier.config import config_from_dict
from notifier.delivery.handoff import DueQueue
from notifier.delivery.workers import BackendWorker
from notifier.notification import Notification
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.conftest import wait_for
from tests.integration.outbox_rows import envelope, note

pytestmark = pytest.mark.integration


def worker_for(store: Store, tmp_path: Path, queue: DueQueue | None) -> BackendWorker:
    config = config_from_dict({"email": {"maildir": str(tmp_path / "Maildir")}})
    backend = backend_class("email")(config)
    backend.setup()
    return BackendWorker(config, Outbox(store), backend, batch=10, chunk=5, queue=queue)


def record_backlog(store: Store, n: int) -> None:
    Outbox(store).record([envelope(f"m{i}") for i in range(n)],
                         [(note(f"user{i}", f"m{i}"), "pending") for i in range(n)])


@pytest.mark.parametrize("with_queue", [False, True])
def test_every_turn_claims_again_while_claims_come_back_full(
        store: Store, tmp_path: Path, with_queue: bool) -> None:
    # 35 due rows, claims of 10: a worker that waited for its poll interval after a
    # full claim would stop after the first turn (run_once returning False).
    record_backlog(store, 35)
    worker = worker_for(store, tmp_path, DueQueue("email") if with_queue else None)
    turns = 0
    while worker.run_once():
        turns += 1
        assert turns <= 10, "the worker never ran out of rows"
    assert turns == 4  # 10 + 10 + 10 + 5, then nothing due
    assert Outbox(store).counts() == {("email", "sent"): 35}
    assert len(mailbox.Maildir(tmp_path / "Maildir", create=False)) == 35


def test_fresh_rows_do_not_starve_the_backlog(store: Store, tmp_path: Path) -> None:
    # While the queue keeps handing over fresh rows, each turn still takes a chunk
    # from the database for as long as the backlog lasts.
    record_backlog(store, 12)
    outbox = Outbox(store)
    queue = DueQueue("email")
    worker = worker_for(store, tmp_path, queue)
    for turn in range(3):
        fresh = outbox.record_and_claim(
            [envelope(f"fresh{turn}")], [(note("zoe", f"fresh{turn}"), "pending")],
            claim={"email"})[2]
        queue.put(fresh)
        assert worker.run_once()
    counts = outbox.counts()
    # Each turn: the fresh row plus a chunk (5) of the backlog, which the claims
    # kept looking at because each came back full: 3 fresh + 12 old.
    assert counts == {("email", "sent"): 15}


def test_rows_with_too_little_claim_left_are_not_sent(store: Store, tmp_path: Path) -> None:
    # A row whose claim runs out mid-batch may already be another worker's: this one
    # leaves it (unsent, still pending) rather than send it a second time.
    record_backlog(store, 3)
    outbox = Outbox(store)
    short = outbox.claim("email", 2, lease=30)  # under CLAIM_MARGIN (60 s)
    queue = DueQueue("email", margin=0)  # the queue itself would hand them out
    queue.put(short)
    worker = worker_for(store, tmp_path, queue)
    worker._look.clear()  # the third row is not claimed either: only the queue counts
    worker._next_look = float("inf")
    assert worker.run_once()
    assert not (tmp_path / "Maildir").exists() or \
        len(mailbox.Maildir(tmp_path / "Maildir", create=False)) == 0
    assert outbox.counts() == {("email", "pending"): 3}


def test_the_claim_is_checked_before_each_mail_not_once_a_chunk(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mail that takes long (an SMTP server timing out) eats into the claims of the
    # rest of its chunk: the next one is checked again before it is sent.
    monkeypatch.setattr(workers_module, "CLAIM_MARGIN", 1.0)
    record_backlog(store, 2)
    outbox = Outbox(store)
    rows = outbox.claim("email", 2, lease=2.0)  # enough left for one slow send, not two
    queue = DueQueue("email", margin=0)
    queue.put(rows)
    worker = worker_for(store, tmp_path, queue)
    worker._look.clear()
    worker._next_look = float("inf")
    send = worker.backend.send
    (until,) = {row.claimed_until for row in rows}
    assert until is not None

    def slow_send(notification: Notification) -> None:
        # The send lasts until the claims have less than CLAIM_MARGIN left.
        wait_for(lambda: time.time() > until - workers_module.CLAIM_MARGIN,
                 "the claims to run low", timeout=5)
        send(notification)

    worker.backend.send = slow_send  # type: ignore[method-assign]
    assert worker.run_once()
    assert len(mailbox.Maildir(tmp_path / "Maildir", create=False)) == 1
    assert outbox.counts() == {("email", "sent"): 1, ("email", "pending"): 1}
