"""Backend workers: threads that send what is due, each through one backend connection.

A worker takes fresh notifications from its destination's
:class:`~notifier.delivery.handoff.DueQueue`, which the ingest fills with
rows it claimed while recording them. It looks in the database too: when
told to (:meth:`BackendWorker.wake` with ``database=True``: a digest was
queued, a retry came due), when its queue is empty and the earliest due row
there says so, and at least every :data:`IDLE_POLL` seconds, so retries and
rows left by other processes are never starved by fresh traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..backends.base import Backend
from ..backends.registry import backend_class
from ..backoff import backoff_delay
from ..config import Config
from ..errors import (
    DeliveryError,
    PermanentDeliveryError,
    StorageError,
    TemporaryDeliveryError,
)
from ..storage.outbox import CLAIM_MARGIN, Outbox, OutboxRow
from .handoff import DueQueue, SentLog, give_back

log = logging.getLogger(__name__)

#: the longest a worker goes without looking at the outbox in the database
IDLE_POLL = 1.0
#: seconds without progress, while rows are due, after which a worker counts as stalled
STALL_AFTER = 120.0


class BackendWorker:
    """Sends due notifications of one destination through one backend.

    ``queue`` is the destination's hand-off queue (shared by the workers of
    that destination), ``sent`` the log that records deliveries; without
    them the worker claims everything from the database and marks each
    chunk sent itself. ``on_result(destination, outcome, n)`` is told
    ``sent``, ``failed`` or ``dead``.

    It is a supervised part (``name``, ``run(stopping)``, ``interrupt()``,
    ``stalled()``): :meth:`setup` opens the backend first, where a mistake
    stops ``notifier serve`` from starting; :meth:`close` closes it after the
    last :meth:`run`. Whatever a backend raises while sending counts as a
    failed attempt of the rows it was sending (retried with backoff, dead
    after ``[delivery] max_attempts``); anything else unexpected propagates
    out of :meth:`run`, having given back the rows it held but had not
    attempted, and the next :meth:`run` opens the backend afresh.
    """

    def __init__(self, config: Config, outbox: Outbox, backend: Backend, *,
                 user: str | None = None,
                 on_result: Callable[[str, str, int], None] | None = None,
                 batch: int = 100, chunk: int = 20, name: str | None = None,
                 queue: DueQueue | None = None, sent: SentLog | None = None):
        self.config = config
        self.outbox = outbox
        self.backend = backend
        self.destination = backend.name
        self.user = user
        self.batch = batch
        self.chunk = chunk
        self.queue = queue
        self.sent = sent
        self.name = name or f"worker-{self.destination}"
        self.on_result = on_result or (lambda destination, outcome, n: None)
        self._wake = threading.Event()
        self._look = threading.Event()  # set: look in the database at the next turn
        self._look.set()
        self._stopping = threading.Event()  # the one run() was given
        self._next_look = 0.0  # time.monotonic() of the next look in the database
        self._set_up = False  # the backend is open and fit to send
        self._opening: tuple[int, str] | None = None  # failed tries to open it again, why
        #: time.monotonic() when the worker last made progress: attempted a send, or
        #: found nothing due in the database
        self.progress_at = time.monotonic()
        self.idle = threading.Event()

    def setup(self) -> None:
        """Open the backend (its connection, its session bus ...)."""
        self.backend.setup()
        self._set_up = True

    def wake(self, database: bool = False) -> None:
        """New rows may be due: in the queue, or with ``database``, only in the database."""
        if database:
            self._look.set()
        self._wake.set()

    def interrupt(self) -> None:
        """Cut an idle wait short (``stopping`` is set): the send in progress finishes first."""
        self._wake.set()

    def close(self) -> None:
        """Close the backend (after the last :meth:`run`)."""
        self._set_up = False
        self.backend.close()

    def run(self, stopping: threading.Event) -> None:
        """Send what is due until ``stopping`` is set; then finish the send in progress."""
        self._stopping = stopping
        self.progress_at = time.monotonic()
        try:
            while not stopping.is_set():
                if not self._set_up and not self._reopen(stopping):
                    continue
                try:
                    worked = self.run_once()
                except StorageError as exc:
                    # The database is unreachable or the like: say so, and try again shortly.
                    log.error("%s: %s", self.name, exc)
                    worked = False
                    self._next_look = time.monotonic() + IDLE_POLL
                if worked:
                    continue
                self.idle.set()
                self._wake.wait(max(0.0, self._next_look - time.monotonic()))
                self._wake.clear()
                self.idle.clear()
        except BaseException:
            self._set_up = False  # the next run opens the backend afresh
            raise

    def _reopen(self, stopping: threading.Event) -> bool:
        """Close the backend and open it again (after a failure its connection is suspect).

        A backend that cannot be opened now (a DeliveryError: its server or
        session bus is away) is tried again with backoff, the rows waiting
        meanwhile; False until it opens.
        """
        try:
            self.backend.close()
        except Exception:  # closing what failed may fail too; opening again is what matters
            log.debug("%s: closing the backend before opening it again", self.name,
                      exc_info=True)
        try:
            self.setup()
        except DeliveryError as exc:
            if self._opening is None:
                log.error("%s: cannot open the %s backend (trying again): %s", self.name,
                          self.destination, exc)
            tries = self._opening[0] + 1 if self._opening else 1
            self._opening = (tries, str(exc))
            stopping.wait(backoff_delay(tries - 1, 1.0, 60.0))
            return False
        if self._opening is not None:
            log.info("%s: the %s backend is open again", self.name, self.destination)
            self._opening = None
        self._look.set()  # what failed meanwhile may be due
        return True

    def stalled(self) -> str | None:
        """Why the worker is stuck: no progress for STALL_AFTER s while rows are due."""
        opening = self._opening
        if opening is not None:
            return f"cannot open the {self.destination} backend ({opening[0]} tries): {opening[1]}"
        idle_for = time.monotonic() - self.progress_at
        if idle_for < STALL_AFTER:
            return None
        due = self.outbox.next_due(self.destination, user=self.user)
        if due is None or due > time.time() - STALL_AFTER:
            return None
        return (f"no send for {idle_for:.0f} s while {self.destination} notifications have "
                f"been due for {time.time() - due:.0f} s")

    def run_once(self) -> bool:
        """Send one batch of due notifications; return whether there was any."""
        rows = self.queue.take(self.chunk) if self.queue is not None else []
        try:
            if not rows and self._look_now():
                rows = self._claim(self.batch)
                if not rows:
                    self.progress_at = time.monotonic()  # nothing due: nothing held up
                    self._schedule_look()
            elif rows and self._look_now():
                # Fresh traffic never holds back what is due in the database: a chunk of each.
                rows += self._claim(self.chunk)
        except BaseException:
            self._give_back(rows)  # taken from the queue, never attempted
            raise
        if not rows:
            return False
        # Outcomes are recorded after every step, so a crash repeats few sends. A
        # backend that delivers a batch at once (a feed: one transaction) takes a chunk
        # a step; the others one notification, so the claim is checked before each
        # send, however long the ones before it took (an SMTP server timing out).
        step = self.chunk if self.backend.batched else 1
        for start in range(0, len(rows), step):
            if self._stopping.is_set():
                self._give_back(rows[start:])
                break
            # A row whose claim is nearly out is left to run out: another worker may
            # take it then, and must not find this one sending it too. So is one claimed
            # by this process while its heartbeat is not being written: the other workers
            # take what it claimed once the heartbeat is stale.
            cutoff = time.time() + CLAIM_MARGIN
            chunk = [row for row in rows[start:start + step]
                     if row.claimed_until is None or row.claimed_until >= cutoff]
            held = [self.outbox.holds(row) for row in chunk]
            if not all(held):
                # Not sent: given back, due at once for whichever worker beats (this one's
                # claim, if another took the row meanwhile, is not its own any more).
                self._give_back([row for row, ok in zip(chunk, held, strict=True) if not ok])
                chunk = [row for row, ok in zip(chunk, held, strict=True) if ok]
            if not chunk:
                continue
            try:
                outcomes = self._send(chunk)
                # What was delivered is recorded first: recording a failure may fail.
                self._record_sent([row.id for row, error in zip(chunk, outcomes, strict=True)
                                   if error is None])
                for row, error in zip(chunk, outcomes, strict=True):
                    if error is not None:
                        self._failed(row, error)
            except BaseException:
                self._give_back(rows[start + step:])
                raise
            self.progress_at = time.monotonic()
        return True

    def _send(self, chunk: list[OutboxRow]) -> list[DeliveryError | None]:
        """The backend's outcome for each row; whatever it raises fails every row of ``chunk``."""
        try:
            outcomes = self.backend.send_batch([row.notification for row in chunk])
        except DeliveryError as exc:
            return [exc] * len(chunk)
        except Exception as exc:  # a backend's bug must cost attempts, not the worker
            log.error("%s: the %s backend raised while sending %d notification(s); each "
                      "counts as a failed attempt", self.name, self.destination, len(chunk),
                      exc_info=exc)
            self._set_up = False  # its connection is suspect: open it again before the next
            error = TemporaryDeliveryError(f"the backend failed: {type(exc).__name__}: {exc}")
            return [error] * len(chunk)
        if not isinstance(outcomes, list) or len(outcomes) != len(chunk):
            got = len(outcomes) if isinstance(outcomes, list) else type(outcomes).__name__
            log.error("%s: the %s backend answered %s outcomes for %d notifications; each "
                      "counts as a failed attempt", self.name, self.destination, got,
                      len(chunk))
            error = TemporaryDeliveryError(
                f"the backend answered {got} outcomes for {len(chunk)} notifications")
            return [error] * len(chunk)
        return [error if error is None or isinstance(error, DeliveryError)
                else TemporaryDeliveryError(f"the backend failed: {error!r}")
                for error in outcomes]

    def _claim(self, limit: int) -> list[OutboxRow]:
        rows = self.outbox.claim(self.destination, limit, user=self.user)
        if len(rows) >= limit:
            # A full claim: more are probably due (a backlog, after a restart or a burst
            # the queue had no room for), so look again at the next turn, not in IDLE_POLL.
            self._look.set()
        return rows

    def _look_now(self) -> bool:
        if self._look.is_set() or time.monotonic() >= self._next_look:
            self._look.clear()
            # Until told otherwise, the next look is a poll interval away at most.
            self._next_look = time.monotonic() + IDLE_POLL
            return True
        return False

    def _schedule_look(self) -> None:
        """Look again when the earliest row in the database is due, or after IDLE_POLL."""
        due = self.outbox.next_due(self.destination, user=self.user)
        wait = IDLE_POLL if due is None else min(IDLE_POLL, max(0.0, due - time.time()))
        self._next_look = time.monotonic() + wait

    def _give_back(self, rows: list[OutboxRow]) -> None:
        """Rows claimed but not attempted (stopping): due again at once, here or elsewhere."""
        give_back(self.outbox, rows, f"claimed {self.destination}")

    def _record_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        if self.sent is not None:
            self.sent.add(ids)
        else:
            self.outbox.mark_sent(ids)
        self.on_result(self.destination, "sent", len(ids))

    def _failed(self, row: OutboxRow, exc: DeliveryError) -> None:
        permanent = isinstance(exc, PermanentDeliveryError)
        delivery = self.config.delivery
        state = self.outbox.mark_failed(row, str(exc), permanent=permanent,
                                        max_attempts=delivery.max_attempts,
                                        base=delivery.retry_base, cap=delivery.retry_max,
                                        wait=getattr(exc, "retry_after", None))
        log.log(logging.ERROR if state == "dead" else logging.WARNING,
                "%s to %s (%s) %s: %s", self.destination, row.user, row.msg_id,
                "is dead" if state == "dead" else f"failed, attempt {row.attempts + 1}", exc)
        self.on_result(self.destination, state, 1)


def build_workers(config: Config, outbox: Outbox, backends: dict[str, Backend], *,
                  queues: dict[str, DueQueue], sent: SentLog | None,
                  on_result: Callable[[str, str, int], None]) -> list[BackendWorker]:
    """One worker per backend connection: ``[email] connections`` for SMTP, one for the others.

    Each destination's workers share its queue in ``queues``.
    """
    workers = []
    for name, backend in backends.items():
        copies = [backend]
        if name == "email" and config.email.smtp_host:
            copies += [backend_class(name)(config) for _ in range(config.email.connections - 1)]
        queues[name].sharers = len(copies)
        for n, copy in enumerate(copies):
            workers.append(BackendWorker(
                config, outbox, copy,
                user=config.dbus.user if name == "desktop" else None,
                on_result=on_result,
                # A feed stores a chunk in one transaction (bigger ones cost less a row,
                # and a feed item is never stored twice); a mail goes one at a time, so
                # a small claim shares the rows between connections.
                batch=1000 if name == "rss" else 20, chunk=500 if name == "rss" else 5,
                name=f"worker-{name}" + (f"-{n + 1}" if len(copies) > 1 else ""),
                queue=queues[name], sent=sent))
    return workers


def close_workers(workers: list[BackendWorker], outbox: Outbox,
                  queues: dict[str, DueQueue]) -> None:
    """After the workers' last run: close their backends, give back what is still queued."""
    for worker in workers:
        try:
            worker.close()
        except Exception:  # one backend failing to close must not keep the rows claimed
            log.exception("closing %s", worker.name)
    give_back(outbox, [row for queue in queues.values() for row in queue.drain()])
