"""Between the ingest and the workers of one process, without a database round trip.

The ingest records new notifications already claimed for this process's
workers (:meth:`Outbox.record_and_claim`) and puts them in the
destination's :class:`DueQueue`; a worker takes them from there, so a fresh
notification is sent without the worker having to find it in the database.
The database stays the record: what is in a queue is a claimed row there,
and when this process dies its claims run out (with several workers on
PostgreSQL, as soon as its heartbeat is stale: see
:mod:`notifier.storage.workers`) and any worker, here or in another process,
takes the rows again.

Workers tell the :class:`SentLog` what they delivered; it marks those rows
sent in one transaction every few milliseconds, rather than one transaction
per send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import StorageError
from ..storage.outbox import CLAIM_MARGIN, Outbox, OutboxRow

log = logging.getLogger(__name__)

#: what a queue holds at most; beyond it, new rows wait in the database, unclaimed
QUEUE_LIMIT = 5000
#: seconds delivered rows may wait to be marked sent before the sent log counts as stalled
STALL_AFTER = 60.0


class DueQueue:
    """Claimed rows of one destination, oldest first, for the workers of this process.

    A row is only handed out while at least ``margin`` seconds of its claim
    remain, enough for one send; an older one is left to run out, after
    which a worker claims it again from the database. ``on_take`` is told
    how many rows each :meth:`take` removed, handed out or dropped.
    """

    def __init__(self, destination: str, *, limit: int = QUEUE_LIMIT,
                 margin: float = CLAIM_MARGIN,
                 clock: Callable[[], float] = time.time,
                 on_take: Callable[[int], None] | None = None):
        self.destination = destination
        self.limit = limit
        self.margin = margin
        self.clock = clock
        self.on_take = on_take
        #: how many workers take from this queue (see :meth:`take`)
        self.sharers = 1
        self._rows: deque[OutboxRow] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def room(self) -> int:
        """How many more rows the queue takes now."""
        return max(0, self.limit - len(self._rows))

    def put(self, rows: list[OutboxRow]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def take(self, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows whose claims have time left; expired ones are dropped.

        With :attr:`sharers` workers on the queue, a worker takes at most its
        share of what is queued, so a few rows go out side by side on several
        connections rather than one after another on one.
        """
        out: list[OutboxRow] = []
        removed = 0
        cutoff = self.clock() + self.margin
        with self._lock:
            limit = max(1, min(limit, -(-len(self._rows) // self.sharers)))
            while self._rows and len(out) < limit:
                row = self._rows.popleft()
                removed += 1
                if row.claimed_until is not None and row.claimed_until >= cutoff:
                    out.append(row)
        if removed and self.on_take is not None:
            self.on_take(removed)
        return out

    def drain(self) -> list[OutboxRow]:
        """Everything still queued, emptying the queue (to give the claims back)."""
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
        return rows


def give_back(outbox: Outbox, rows: list[OutboxRow], what: str = "queued") -> None:
    """Release the claims of ``rows`` (not attempted), so they are due again at once.

    When the database cannot be reached, say so: the claims run out on their own.
    """
    if not rows:
        return
    try:
        outbox.release(rows)
    except StorageError as exc:
        log.warning("could not give back %d %s notifications; their claims run out on "
                    "their own: %s", len(rows), what, exc)


class SentLog:
    """Marks delivered rows sent, in batches, from a thread of its own.

    :meth:`add` returns at once; the rows are written within about
    ``delay`` seconds (longer while the database is down: nothing is
    dropped, the ids wait for the next try). Before its thread ever ran,
    :meth:`add` writes at once.

    It is a supervised part (``sent-log``: ``run(stopping)``, ``interrupt()``,
    ``stalled()``); :meth:`start` and :meth:`stop` run it in a thread of its
    own instead. A failure other than the database's propagates out of
    :meth:`run`, the ids kept for the next run. :meth:`close` writes what is
    left after the last run.
    """

    name = "sent-log"

    def __init__(self, outbox: Outbox, *, delay: float = 0.025, retry: float = 1.0):
        self.outbox = outbox
        self.delay = delay
        self.retry = retry
        self._ids: list[int] = []
        self._cond = threading.Condition()
        self._flushing = threading.Lock()
        self._stopping = threading.Event()
        self._started = False
        self._thread: threading.Thread | None = None
        self._writing = 0
        self._waiting_since: float | None = None  # time.monotonic() of the oldest id kept

    def add(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._cond:
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()
            self._ids.extend(ids)
            self._cond.notify()
        if not self._started:
            self.flush()  # not started: write at once

    def pending(self) -> int:
        """Ids not written yet."""
        with self._cond:
            return len(self._ids) + self._writing

    def start(self) -> None:
        """Run in a thread of its own, unsupervised (until :meth:`stop`)."""
        self._started = True
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, args=(self._stopping,),
                                        name="sent-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write every id added so far, then stop the thread :meth:`start` started."""
        self._stopping.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        """Write what is left (after the last :meth:`run`)."""
        self.flush()

    def interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stalled(self) -> str | None:
        """Why delivered rows are not marked sent: ids kept for over STALL_AFTER seconds."""
        with self._cond:
            since, waiting = self._waiting_since, len(self._ids) + self._writing
        if since is None or not waiting or time.monotonic() - since < STALL_AFTER:
            return None
        return (f"{waiting} delivered notifications not marked sent for "
                f"{time.monotonic() - since:.0f} s (the database?)")

    def flush(self) -> bool:
        """Write what is waiting now; False (keeping the ids) when the database failed."""
        with self._flushing:  # one write at a time, so pending() counts every id
            with self._cond:
                ids, self._ids = self._ids, []
                self._writing = len(ids)
            if not ids:
                return True
            try:
                self.outbox.mark_sent(ids)
            except BaseException as exc:
                # Whatever went wrong, the ids are kept for the next try.
                with self._cond:
                    self._ids[:0] = ids
                    self._writing = 0
                if not isinstance(exc, StorageError):
                    raise
                log.error("cannot mark %d delivered notifications sent (will try again): %s",
                          len(ids), exc)
                return False
            with self._cond:
                self._writing = 0
                self._waiting_since = time.monotonic() if self._ids else None
            return True

    def run(self, stopping: threading.Event) -> None:
        """Write what is added, in batches, until ``stopping`` is set; then what is left."""
        self._started = True
        while True:
            with self._cond:
                while not self._ids and not stopping.is_set():
                    self._cond.wait()
            if stopping.is_set():
                self.flush()
                return
            # Let more sends finish, so one transaction covers them.
            time.sleep(self.delay)
            if not self.flush():
                # A full retry interval, however many sends are added meanwhile: while the
                # database is away, one attempt (and one error) per interval.
                stopping.wait(self.retry)
