"""The hand-off between ingest and workers: due queues and the batched sent log."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from notifier.delivery.handoff import QUEUE_LIMIT, DueQueue, SentLog
from notifier.errors import StorageError
from notifier.notification import Notification
from notifier.storage.outbox import OutboxRow
from tests.conftest import wait_for

NOW = 1_800_000_000.0
WAIT = 10.0


class Clock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


def row(id: int, claimed_until: float | None = NOW + 120, destination: str = "email"
        ) -> OutboxRow:
    n = Notification(user=f"user{id}", destination=destination, address=f"u{id}@example.org",
                     msg_id=f"m{id}", topic="org.fedoraproject.prod.bodhi.update.comment",
                     app="bodhi", content={"subject": "s", "text": "t", "html": "<p>t</p>"})
    return OutboxRow(id=id, user=n.user, msg_id=n.msg_id, destination=destination,
                     state="pending", attempts=0, next_attempt=NOW, created_at=NOW,
                     sent_at=None, last_error=None, notification=n,
                     claimed_until=claimed_until)


def ids(rows: list[OutboxRow]) -> list[int]:
    return [r.id for r in rows]


# -- DueQueue ------------------------------------------------------------------


def test_queue_hands_rows_out_oldest_first_in_limited_batches() -> None:
    queue = DueQueue("email", clock=Clock())
    queue.put([row(3), row(1)])
    queue.put([row(2)])
    assert len(queue) == 3
    assert ids(queue.take(2)) == [3, 1]  # the order they were put in, not by id
    assert len(queue) == 1
    assert ids(queue.take(10)) == [2]
    assert queue.take(10) == []
    assert len(queue) == 0


def test_shared_queue_spreads_a_few_rows_over_its_workers() -> None:
    queue = DueQueue("email", clock=lambda: NOW)
    queue.sharers = 4
    queue.put([row(i) for i in range(1, 7)])
    # Six rows, four workers: each takes its share of what is left (6/4 rounded up,
    # then 4/4, ...), not all five at once.
    assert ids(queue.take(5)) == [1, 2]
    assert ids(queue.take(5)) == [3]
    assert ids(queue.take(5)) == [4]
    assert ids(queue.take(5)) == [5]
    assert ids(queue.take(5)) == [6]
    assert queue.take(5) == []
    # A long queue still goes out in full chunks.
    queue.put([row(i) for i in range(10, 50)])
    assert len(queue.take(5)) == 5


def test_queue_drops_rows_with_too_little_of_their_claim_left() -> None:
    clock = Clock()
    queue = DueQueue("email", margin=60.0, clock=clock)
    queue.put([row(1, claimed_until=NOW + 59.9),   # would run out during the send
               row(2, claimed_until=NOW + 60.0),   # exactly the margin: still handed out
               row(3, claimed_until=NOW - 1),      # already ran out
               row(4, claimed_until=None),         # not claimed at all
               row(5, claimed_until=NOW + 120)])
    assert ids(queue.take(10)) == [2, 5]
    assert len(queue) == 0  # the dropped ones are gone too: their claims just run out


def test_queue_margin_follows_the_clock() -> None:
    clock = Clock()
    queue = DueQueue("email", margin=60.0, clock=clock)
    queue.put([row(1, claimed_until=NOW + 100), row(2, claimed_until=NOW + 200)])
    clock.now += 50  # row 1 has 50 s left, row 2 has 150 s
    assert ids(queue.take(10)) == [2]


def test_dropped_rows_do_not_count_against_the_take_limit() -> None:
    queue = DueQueue("email", margin=60.0, clock=Clock())
    queue.put([row(1, claimed_until=NOW), row(2, claimed_until=NOW), row(3), row(4), row(5)])
    assert ids(queue.take(2)) == [3, 4]
    assert ids(queue.drain()) == [5]


def test_room_is_what_is_left_below_the_limit() -> None:
    queue = DueQueue("email", limit=3, clock=Clock())
    assert queue.room() == 3
    queue.put([row(1), row(2)])
    assert queue.room() == 1
    queue.put([row(3), row(4)])  # put does not refuse: room says when to stop
    assert len(queue) == 4
    assert queue.room() == 0
    queue.take(3)
    assert queue.room() == 2
    assert DueQueue("irc").room() == QUEUE_LIMIT


def test_drain_returns_everything_even_expired_and_empties_the_queue() -> None:
    queue = DueQueue("email", clock=Clock())
    queue.put([row(1), row(2, claimed_until=NOW - 10), row(3, claimed_until=None)])
    drained = queue.drain()
    assert ids(drained) == [1, 2, 3]  # all of them, to give their claims back
    assert len(queue) == 0
    assert queue.take(10) == [] and queue.drain() == []


def test_queue_hands_each_row_out_once_across_threads() -> None:
    queue = DueQueue("email", clock=Clock())
    queue.put([row(i) for i in range(2000)])
    taken: list[list[OutboxRow]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def worker(mine: list[OutboxRow]) -> None:
        start.wait()
        while batch := queue.take(7):
            mine.extend(batch)

    threads = [threading.Thread(target=worker, args=(t,)) for t in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    every = sorted(r.id for mine in taken for r in mine)
    assert every == list(range(2000))


# -- SentLog -------------------------------------------------------------------


class FakeOutbox:
    """Records mark_sent calls; can fail some, or block one until told to go on."""

    def __init__(self, failures: int = 0, error: Exception | None = None):
        self.calls: list[list[int]] = []
        self.failures = failures
        self.error = error or StorageError("sqlite:///x.db: cannot mark notifications sent: "
                                           "database is locked")
        self.block: threading.Event | None = None
        self.blocked = threading.Event()
        self.called = threading.Condition()

    def mark_sent(self, ids: list[int]) -> None:
        if self.block is not None:
            block, self.block = self.block, None
            self.blocked.set()
            assert block.wait(WAIT)
        with self.called:
            self.calls.append(list(ids))
            self.called.notify_all()
        if self.failures:
            self.failures -= 1
            raise self.error

    def wait_calls(self, count: int) -> None:
        with self.called:
            assert self.called.wait_for(lambda: len(self.calls) >= count, WAIT), self.calls


def sent_log(outbox: FakeOutbox, **kw: Any) -> SentLog:
    return SentLog(outbox, **kw)  # type: ignore[arg-type]


def test_without_its_thread_add_writes_at_once() -> None:
    outbox = FakeOutbox()
    log = sent_log(outbox)
    log.add([1, 2])
    assert outbox.calls == [[1, 2]]
    log.add([])  # nothing to write: no transaction
    assert outbox.calls == [[1, 2]]
    assert log.pending() == 0


def test_ids_added_while_a_write_runs_go_into_one_transaction() -> None:
    outbox = FakeOutbox()
    gate = threading.Event()
    outbox.block = gate
    log = sent_log(outbox, delay=0.0)
    log.start()
    try:
        log.add([1])
        assert outbox.blocked.wait(WAIT)  # the thread is writing [1]
        log.add([2, 3])
        log.add([4])
        log.add([5])
        assert log.pending() == 5  # one being written, four waiting
        gate.set()
        outbox.wait_calls(2)
    finally:
        log.stop()
    assert outbox.calls == [[1], [2, 3, 4, 5]]
    assert log.pending() == 0


def test_failed_write_keeps_the_ids_for_the_next_flush() -> None:
    outbox = FakeOutbox(failures=1)
    log = sent_log(outbox)
    log.add([1, 2])  # not started: writes at once, and the database fails
    assert outbox.calls == [[1, 2]]
    assert log.pending() == 2
    log.add([3])
    # The kept ids come first, then the new one, in one transaction.
    assert outbox.calls == [[1, 2], [1, 2, 3]]
    assert log.pending() == 0


def test_flush_says_whether_it_wrote() -> None:
    outbox = FakeOutbox(failures=1)
    log = sent_log(outbox)
    assert log.flush() is True  # nothing waiting
    assert outbox.calls == []
    log._ids.extend([7, 8])
    assert log.flush() is False
    assert log.pending() == 2
    assert log.flush() is True
    assert outbox.calls == [[7, 8], [7, 8]]
    assert log.pending() == 0


def test_thread_tries_again_after_a_failed_write() -> None:
    outbox = FakeOutbox(failures=2)
    log = sent_log(outbox, delay=0.0, retry=0.01)
    log.start()
    try:
        log.add([1, 2, 3])
        outbox.wait_calls(3)
    finally:
        log.stop()
    # Two failures, then the same ids written by the thread; stop had nothing left.
    assert outbox.calls == [[1, 2, 3]] * 3
    assert log.pending() == 0


def test_other_errors_are_not_swallowed_as_database_trouble() -> None:
    outbox = FakeOutbox(failures=1, error=ValueError("a bug, not the database"))
    log = sent_log(outbox)
    with pytest.raises(ValueError):
        log.add([1])


def test_stop_writes_what_is_left() -> None:
    outbox = FakeOutbox()
    log = sent_log(outbox)
    log.start()
    log.add([1, 2])
    log.add([3])
    log.stop()
    assert log._thread is None
    assert sorted(i for call in outbox.calls for i in call) == [1, 2, 3]
    assert log.pending() == 0


def test_stop_waits_for_the_write_in_progress_and_writes_the_rest() -> None:
    outbox = FakeOutbox()
    gate = threading.Event()
    outbox.block = gate
    log = sent_log(outbox, delay=0.0)
    log.start()
    log.add([1])
    assert outbox.blocked.wait(WAIT)
    log.add([2, 3])
    stopped = threading.Event()
    stopper = threading.Thread(target=lambda: (log.stop(), stopped.set()))
    stopper.start()
    assert not stopped.wait(0.2), "stop returned while a write was still running"
    gate.set()
    assert stopped.wait(WAIT)
    stopper.join(WAIT)
    assert outbox.calls == [[1], [2, 3]]
    assert log.pending() == 0


def test_stop_without_start_writes_what_is_left() -> None:
    outbox = FakeOutbox(failures=1)
    log = sent_log(outbox)
    log.add([1])  # failed, kept
    log.stop()
    assert outbox.calls == [[1], [1]]
    assert log.pending() == 0


def test_stop_with_the_database_down_keeps_the_ids_pending() -> None:
    outbox = FakeOutbox(failures=1000)
    log = sent_log(outbox, delay=0.0, retry=0.01)
    log.start()
    log.add([1, 2])
    log.stop()
    # Nothing silently lost: every try wrote the same ids, and they are still pending.
    assert outbox.calls and all(call == [1, 2] for call in outbox.calls)
    assert log.pending() == 2


def test_pending_counts_ids_of_every_write_in_progress() -> None:
    outbox = FakeOutbox()
    gate = threading.Event()
    outbox.block = gate
    log = sent_log(outbox)  # not started: each add() writes in its caller's thread
    first = threading.Thread(target=log.add, args=([1],))
    first.start()
    second = None
    try:
        assert outbox.blocked.wait(WAIT)  # [1] is being written
        # A second write waits for the first, and its ids count as pending meanwhile.
        second = threading.Thread(target=log.add, args=([2, 3],))
        second.start()
        wait_for(lambda: log.pending() == 3, "the second write's ids to count as pending")
        assert outbox.calls == []
    finally:
        gate.set()
        first.join(WAIT)
        if second is not None:
            second.join(WAIT)
    assert sorted(sum(outbox.calls, [])) == [1, 2, 3]
    assert log.pending() == 0


def test_with_the_database_down_one_try_per_retry_interval() -> None:
    # Sends keep coming while the database is away; the log tries once per interval,
    # not once per send (which would also log an error per send).
    outbox = FakeOutbox(failures=1000)
    log = sent_log(outbox, delay=0.0, retry=60.0)  # longer than the test, however slow
    log.start()
    try:
        log.add([1])
        outbox.wait_calls(1)
        for i in range(2, 30):
            log.add([i])
            time.sleep(0.005)  # the sends trickle in, as deliveries do: not a wait
        assert len(outbox.calls) == 1
    finally:
        outbox.failures = 0
        log.stop()
    assert sorted(outbox.calls[-1]) == list(range(1, 30))  # kept, then written at stop
