"""The hand-off on a real outbox: claimed rows through a due queue, marked sent in batches."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from notifier.delivery.handoff import DueQueue, SentLog
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration

WAIT = 10.0


class CountingOutbox(Outbox):
    """An Outbox that records its mark_sent calls; the first can be held at ``gate``."""

    def __init__(self, store: Store, clock: Clock, gate: threading.Event | None = None):
        super().__init__(store, clock)
        self.calls: list[list[int]] = []
        self.gate = gate
        self.waiting = threading.Event()

    def mark_sent(self, ids: list[int]) -> None:
        if self.gate is not None:
            gate, self.gate = self.gate, None
            self.waiting.set()
            assert gate.wait(WAIT)
        self.calls.append(list(ids))
        super().mark_sent(ids)


def record_claimed(outbox: Outbox, users: list[str], msg_id: str) -> list[int]:
    _m, _n, claimed = outbox.record_and_claim(
        [envelope(msg_id)], [(note(user, msg_id), "pending") for user in users],
        claim={"email"})
    assert [row.user for row in claimed] == users
    return [row.id for row in claimed]


def states(outbox: Outbox) -> dict[tuple[str, str], str]:
    return {(r.user, r.msg_id): r.state for r in outbox.rows()}


def test_sent_log_marks_rows_sent_in_one_transaction(store: Store) -> None:
    gate = threading.Event()
    outbox = CountingOutbox(store, Clock(), gate)
    first = record_claimed(outbox, ["alice"], "m1")
    rest = record_claimed(outbox, ["bob", "carol", "dave"], "m2")
    log = SentLog(outbox, delay=0.0)
    log.start()
    try:
        log.add(first)
        assert outbox.waiting.wait(WAIT)  # the thread is writing alice's row
        for row_id in rest:  # three workers, say, each reporting one send
            log.add([row_id])
        assert log.pending() == 4
    finally:
        gate.set()
        log.stop()
    assert outbox.calls == [first, rest]
    assert log.pending() == 0
    assert set(states(outbox).values()) == {"sent"}
    assert all(r.sent_at is not None for r in outbox.rows())
    assert outbox.claim("email") == [] and outbox.next_due("email") is None


def test_sent_log_keeps_ids_while_the_database_fails(store: Store) -> None:
    outbox = Outbox(store, Clock())
    ids = record_claimed(outbox, ["alice", "bob"], "m1")
    log = SentLog(outbox)  # not started: every add writes at once
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))
    try:
        log.add(ids[:1])
        assert log.pending() == 1  # the write failed; the id is kept
        log.add(ids[1:])
        assert log.pending() == 2
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))
    assert states(outbox) == {("alice", "m1"): "pending", ("bob", "m1"): "pending"}
    assert log.flush() is True
    assert log.pending() == 0
    assert states(outbox) == {("alice", "m1"): "sent", ("bob", "m1"): "sent"}


def test_claimed_rows_go_from_the_queue_to_sent(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    _m, _n, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "pending"), (note("bob", "m1"), "pending"),
                           (note("carol", "m1", "irc"), "pending")], claim={"email"})
    queue = DueQueue("email", clock=clock)
    queue.put(claimed)
    log = SentLog(outbox)
    log.start()
    try:
        taken = queue.take(10)
        assert [r.user for r in taken] == ["alice", "bob"]
        # While queued and being sent, nobody claims them from the database.
        assert outbox.claim("email") == []
        log.add([r.id for r in taken])
    finally:
        log.stop()
    assert states(outbox) == {("alice", "m1"): "sent", ("bob", "m1"): "sent",
                              ("carol", "m1"): "pending"}
    assert [r.user for r in outbox.claim("irc")] == ["carol"]


def test_drained_rows_given_back_are_claimable_at_once(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    _m, _n, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "pending"), (note("bob", "m1"), "pending")],
        claim={"email"})
    queue = DueQueue("email", clock=clock)
    queue.put(claimed)
    assert outbox.claim("email") == []
    assert outbox.release(queue.drain()) == 2
    assert [r.user for r in outbox.claim("email")] == ["alice", "bob"]


def test_rows_whose_claim_ran_out_in_the_queue_are_claimed_again_not_taken(
        store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    _m, _n, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "pending")], claim={"email"}, lease=100)
    queue = DueQueue("email", margin=60, clock=clock)
    queue.put(claimed)
    clock.now += 50  # 50 s of the claim left: too little for a send
    assert queue.take(10) == []
    assert outbox.claim("email") == []  # still leased in the database
    clock.now += 51  # the claim ran out
    (again,) = outbox.claim("email")
    assert again.id == claimed[0].id and again.claimed_until == clock.now + 120
