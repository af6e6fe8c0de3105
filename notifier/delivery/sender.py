"""A child process that sends the notifications of some destinations (SMTP mail, feed digests).

``notifier serve`` is one Python process: its ingest thread (matching,
rendering, recording) and its delivery threads share one interpreter lock.
An SMTP send is four round trips, and after each reply the worker must win
the lock back from a busy ingest, so under load mail waits on the ingest,
not on the server. (A feed's other notifications never come here: the
ingest stores their items as it records them.) :class:`SenderProcess` runs
those workers in a process of their own instead, with its own database
connection, its own :class:`~notifier.delivery.handoff.SentLog` and its own
queues, on the other core.

Nothing about the outbox changes: the ingest records each notification
already claimed and hands the row over the pipe, exactly as it would put it
in a local :class:`~notifier.delivery.handoff.DueQueue`; the database stays
the record. The child is a part of ``notifier serve`` under its supervisor
(:meth:`SenderProcess.run`): if it dies, or one of its threads fails (which
stops it), the rows it held come due again when their claims run out, and
the supervisor starts a new child after a backoff, counting a restart; if
``notifier serve`` is killed, the kernel kills the child with it (Linux), as
it would a thread. A SIGTERM to the whole process group (systemd stopping
the service) does not stop the child at once: ``notifier serve`` stops it
in its turn, after the ingest.

Over the pipe, parent to child: ``("rows", destination, rows)``, ``("wake",
destination, database)``, ``("stop",)``. Child to parent: ``("ready",
names)``, ``("taken", destination, n)``, ``("outcome", destination, outcome,
n)``, ``("failed", reason)``, ``("stopped",)``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import NotifierError, ServiceError
from ..logs import log_to_stderr
from ..storage.outbox import OutboxRow
from .handoff import QUEUE_LIMIT, DueQueue, SentLog
from .workers import build_workers, close_workers

log = logging.getLogger(__name__)

#: how long the child gathers counts for the parent before sending them
COUNT_DELAY = 0.01
#: seconds a child waits, after a SIGTERM, for notifier serve to stop it (as when
#: systemd signals the whole process group) before it stops on its own
SIGTERM_GRACE = 10.0
#: seconds the parent waits for a child told to stop before killing it
STOP_TIMEOUT = 30.0
#: seconds a child may take to get ready, and may hold rows without taking any, before
#: it counts as stalled
STALL_AFTER = 120.0
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


class SenderProcess:
    """The parent's handle on the child that sends ``destinations``; the part ``sender``.

    The ingest asks :meth:`room`, hands rows over with :meth:`put` and
    :meth:`wake`\\ s it like a local worker. ``on_result(destination,
    outcome, n)`` is told what the child's workers did, for the metrics;
    ``on_lost(rows)`` gets the rows a child was handed and never took when it
    exits (to give their claims back).

    As a supervised part, :meth:`run` starts a child and relays its reports
    until ``stopping`` is set (then it stops the child and returns) or the
    child exits unasked: then it raises :class:`ServiceError`, and the
    supervisor starts another child after a backoff. :meth:`start` and
    :meth:`stop` run it unsupervised instead.
    """

    name = "sender"

    def __init__(self, config: Config, destinations: list[str], *,
                 on_result: Callable[[str, str, int], None], limit: int = QUEUE_LIMIT,
                 on_lost: Callable[[list[OutboxRow]], None] | None = None,
                 claimant: Callable[[], str | None] = lambda: None):
        self.config = config
        #: the id of the worker (notifier.storage.workers) the child claims rows for
        self.claimant = claimant
        self.destinations = list(destinations)
        self.on_result = on_result
        self.on_lost = on_lost or (lambda rows: None)
        self.limit = limit
        self.names = [f"sender:{d}" for d in self.destinations]
        #: rows handed to the child and not yet taken by its workers, oldest first
        self._handed: dict[str, deque[OutboxRow]] = {d: deque() for d in self.destinations}
        self._lock = threading.Lock()  # guards _handed
        self._sending = threading.Lock()  # one message at a time on the pipe; guards _conn
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: Any = None
        self._ready = threading.Event()
        self._stop_sent = False
        self._spawned_at = time.monotonic()
        self._heard_at = time.monotonic()  # the child's last report
        self._failure: str | None = None  # what the child said when it could not go on
        self._own_stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the parent's side ---------------------------------------------------

    def room(self, destination: str) -> int:
        """How many more rows of ``destination`` the child takes now."""
        if not self._ready.is_set():
            return 0
        with self._lock:
            return max(0, self.limit - len(self._handed[destination]))

    def put(self, destination: str, rows: list[OutboxRow]) -> bool:
        """Hand claimed rows to the child; False when it is not running (give them back)."""
        # Noted before sending: the child's "taken" report may come back before send returns.
        with self._lock:
            self._handed[destination].extend(rows)
        if self._send(("rows", destination, rows)):
            return True
        sent = {id(row) for row in rows}
        with self._lock:
            self._handed[destination] = deque(
                row for row in self._handed[destination] if id(row) not in sent)
        return False

    def wake(self, destination: str, database: bool = False) -> None:
        """Tell the child's workers of ``destination`` that rows may be due."""
        # A child that is not running yet looks in the database when it starts.
        self._send(("wake", destination, database))

    @property
    def ready(self) -> bool:
        """Whether a child is running and taking rows."""
        return self._ready.is_set()

    def run(self, stopping: threading.Event) -> None:
        """Start a child; relay its reports; stop it when ``stopping`` is set.

        Raises :class:`ServiceError` when the child exits although nobody
        asked it to (killed, crashed, could not start).
        """
        self._stop_sent = False
        self._failure = None
        self._spawn()
        process = self._process
        try:
            self._relay(stopping)
        finally:
            self._ready.clear()
            with self._sending:
                conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            process.join(5)
            if process.is_alive():
                log.error("the sender process (pid %s) did not exit; killing it", process.pid)
                process.kill()
                process.join(5)
            self._give_back_untaken()
        if stopping.is_set() and process.exitcode in (0, -signal.SIGTERM):
            # Stopped as asked; or, still starting, it had no handler yet for the SIGTERM
            # systemd sends the whole group: it held nothing then.
            return
        why = f": {self._failure}" if self._failure else ""
        raise ServiceError(
            f"the sender process (pid {process.pid}) for {', '.join(self.destinations)} "
            f"exited with code {process.exitcode}{why}; what it held is due again when its "
            f"claims run out")

    def _give_back_untaken(self) -> None:
        """The rows the child was handed and never took: due again at once, not when their
        claims run out (a stopping child gave them back already; that is a no-op then)."""
        with self._lock:
            untaken = [row for rows in self._handed.values() for row in rows]
            self._handed = {d: deque() for d in self.destinations}
        if untaken:
            self.on_lost(untaken)

    def interrupt(self) -> None:
        """Tell the child to stop (``stopping`` is set): it finishes its sends first."""
        self._stop_sent = True
        self._send(("stop",))

    def stalled(self) -> str | None:
        """Why the child is stuck: not ready for long, or holding rows it does not take."""
        now = time.monotonic()
        if not self._ready.is_set():
            if self._process is not None and now - self._spawned_at >= STALL_AFTER:
                return f"the sender process has not been ready for {now - self._spawned_at:.0f} s"
            return None
        with self._lock:
            held = sum(len(rows) for rows in self._handed.values())
        if held and now - self._heard_at >= STALL_AFTER:
            return (f"the sender process took none of the {held} rows handed to it in "
                    f"{now - self._heard_at:.0f} s")
        return None

    def start(self) -> None:
        """Run unsupervised, in a thread of its own, until :meth:`stop` (a child that dies
        is not replaced)."""
        self._own_stop = threading.Event()
        self._thread = threading.Thread(target=self._run_alone, name="sender", daemon=True)
        self._thread.start()

    def _run_alone(self) -> None:
        try:
            self.run(self._own_stop)
        except ServiceError as exc:
            log.error("%s", exc)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop what :meth:`start` started: the child finishes its sends, gives back the rest."""
        self._own_stop.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout + 10)

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        process = ctx.Process(
            target=run_child, name="notifier-sender", daemon=True,
            args=(self.config, self.destinations, child_end, logging.getLogger().level,
                  os.getpid(), self.claimant()))
        process.start()
        child_end.close()
        with self._sending, self._lock:
            self._conn, self._process = parent_end, process
            self._handed = {d: deque() for d in self.destinations}
        self._spawned_at = self._heard_at = time.monotonic()

    def _send(self, message: tuple[Any, ...]) -> bool:
        # Not under _lock: a send blocks while the pipe is full, and the reader of the
        # child's reports, which empties the child's side, needs _lock for the counts.
        with self._sending:
            conn = self._conn
            if conn is None or (message[0] != "stop" and not self._ready.is_set()):
                return False
            try:
                conn.send(message)
            except (OSError, ValueError):
                # The child is gone; run() sees its end of the pipe close.
                return False
        return True

    def _relay(self, stopping: threading.Event) -> None:
        """Read what the child reports until it stops (its end of the pipe closes)."""
        conn = self._conn
        assert conn is not None
        stop_at: float | None = None
        while True:
            if stopping.is_set():
                if not self._stop_sent:
                    self.interrupt()
                if stop_at is None:
                    stop_at = time.monotonic() + STOP_TIMEOUT
                elif time.monotonic() > stop_at:
                    log.error("the sender process did not stop within %.0f s; killing it",
                              STOP_TIMEOUT)
                    self._process.kill()
                    return
            try:
                if not conn.poll(0.5):
                    continue
                message = conn.recv()
            except (EOFError, OSError):
                return
            self._heard_at = time.monotonic()
            if self._take(message):
                return

    def _take(self, message: tuple[Any, ...]) -> bool:
        """Act on one report of the child's; True once it has stopped."""
        kind = message[0]
        if kind == "outcome":
            self.on_result(message[1], message[2], message[3])
        elif kind == "taken":
            with self._lock:
                handed = self._handed[message[1]]
                for _ in range(min(message[2], len(handed))):
                    handed.popleft()
        elif kind == "ready":
            self.names = list(message[1])
            self._ready.set()
            log.info("sender process (pid %s) ready: %s", self._process.pid,
                     ", ".join(self.names))
        elif kind == "failed":
            self._failure = str(message[1])
            self._ready.clear()
        elif kind == "stopped":
            return True
        return False


# -- the child's side ------------------------------------------------------------


def run_child(config: Config, destinations: list[str], conn: Any, log_level: int,
              parent_pid: int, claimant: str | None = None) -> None:
    """The child process: the workers of ``destinations``, fed through ``conn``.

    Exits 0 when told to stop (or when notifier serve went away), 1 when it
    could not start or one of its threads failed: the parent's supervisor
    then starts another.
    """
    signals = _Signals()
    # Ctrl-C reaches the whole process group: notifier serve drains this process itself.
    # SIGTERM reaches it too when systemd stops the service: notifier serve then stops
    # this process in its turn, after the ingest, so this one goes on sending until told;
    # a SIGTERM to this process alone stops it after SIGTERM_GRACE (see _Child.serve).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signals.on_sigterm)
    die_with_parent(parent_pid, "notifier-sender")
    # Unlike notifier serve, this process keeps the interpreter's default switch interval:
    # its threads wait on sockets and let go of the interpreter by themselves, and forced
    # switches only cost (measured: p50 9.7-9.8 ms here against 11.2-13.1 ms at 0.5 ms).
    log_to_stderr(log_level)
    child = _Child(config, destinations, conn, signals, claimant)
    try:
        child.start()
    except NotifierError as exc:
        child.report("failed", str(exc))
        child.close()
        sys.exit(1)
    gc.collect()
    gc.freeze()  # as notifier serve does: full collections skip what start-up made
    child.serve()
    child.close()
    failure = child.failure
    if failure is not None:
        child.report("failed", failure)
    child.report("stopped")
    if failure is not None:
        sys.exit(1)


class _Signals:
    """When a SIGTERM arrived (time.monotonic()), set by the handler; None before."""

    sigterm_at: float | None = None

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.sigterm_at is None:
            self.sigterm_at = time.monotonic()


class _Child:
    def __init__(self, config: Config, destinations: list[str], conn: Any, signals: _Signals,
                 claimant: str | None = None):
        self.config = config
        self.claimant = claimant
        self.destinations = destinations
        self.conn = conn
        self.signals = signals
        self._lock = threading.Lock()
        self._counted = threading.Condition()
        self._counts: dict[tuple[Any, ...], int] = {}
        self._closing = False
        self._closed = False
        self._counter = threading.Thread(target=self._send_counts, name="counts", daemon=True)
        self.store: Any = None
        self.outbox: Any = None
        self.workers: list[Any] = []
        self.queues: dict[str, DueQueue] = {}
        self.sent_log: SentLog | None = None
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        #: why a thread of this process failed (it then stops), else None
        self.failure: str | None = None

    def report(self, *message: Any) -> None:
        with self._lock:
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                # The parent is gone, so nobody is left to count this; the recv loop ends.
                log.debug("parent gone; not reporting %s", message[0])

    def count(self, *key: Any, n: int) -> None:
        """Add to a count ("taken" or "outcome") that goes to the parent within COUNT_DELAY."""
        with self._counted:
            self._counts[key] = self._counts.get(key, 0) + n
            self._counted.notify()

    def _send_counts(self) -> None:
        # One message per few milliseconds rather than two per mail: the parent's
        # ingest shares its interpreter with the thread that reads them.
        while True:
            with self._counted:
                while not self._counts and not self._closing:
                    self._counted.wait()
                if not self._counts and self._closing:
                    return
            time.sleep(COUNT_DELAY)
            with self._counted:
                counts, self._counts = self._counts, {}
            for key, n in counts.items():
                self.report(*key, n)

    def start(self) -> None:
        from ..backends.registry import backend_class
        from ..storage import Store
        from ..storage.outbox import Outbox
        from ..storage.workers import WorkerOf

        self.store = Store.from_config(self.config, create=False)
        # Claims in notifier serve's name, held while its heartbeat is fresh.
        outbox = Outbox(self.store, claimant=WorkerOf(self.store, self.claimant)
                        if self.claimant is not None else None)
        self.outbox = outbox
        self.sent_log = SentLog(outbox)
        self.queues = {d: DueQueue(d, on_take=lambda n, d=d: self.count("taken", d, n=n))
                       for d in self.destinations}
        backends = {d: backend_class(d)(self.config) for d in self.destinations}
        self.workers = build_workers(
            self.config, outbox, backends, queues=self.queues, sent=self.sent_log,
            on_result=lambda d, outcome, n: self.count("outcome", d, outcome, n=n))
        for worker in self.workers:
            worker.setup()
        self._counter.start()
        for part in (self.sent_log, *self.workers):
            thread = threading.Thread(target=self._keep, args=(part,), name=part.name,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        self.report("ready", [worker.name for worker in self.workers])

    def _keep(self, part: Any) -> None:
        """Run one part; if it fails, this process stops (and notifier serve starts another)."""
        try:
            part.run(self.stopping)
        except BaseException as exc:  # the parent's supervisor restarts this whole process
            log.error("sender process: %s failed; the process stops", part.name, exc_info=exc)
            self.failure = f"{part.name} failed: {type(exc).__name__}: {exc}"
        else:
            if self.stopping.is_set():
                return
            self.failure = f"{part.name} returned although nobody asked it to stop"
            log.error("sender process: %s", self.failure)

    def serve(self) -> None:
        by_destination: dict[str, list[Any]] = {}
        for worker in self.workers:
            by_destination.setdefault(worker.destination, []).append(worker)
        told = False
        while self.failure is None:
            sigterm_at = self.signals.sigterm_at
            if sigterm_at is not None:
                if not told:
                    told = True
                    log.info("sender process: SIGTERM; stopping when notifier serve says so, "
                             "or in %.0f s", SIGTERM_GRACE)
                if time.monotonic() - sigterm_at >= SIGTERM_GRACE:
                    log.info("sender process: stopping %.0f s after SIGTERM", SIGTERM_GRACE)
                    break
            try:
                if not self.conn.poll(0.2):
                    continue
                message = self.conn.recv()
            except (EOFError, OSError):
                log.warning("notifier serve went away; the sender process stops")
                break
            kind = message[0]
            if kind == "rows":
                self.queues[message[1]].put(message[2])
                for worker in by_destination.get(message[1], ()):
                    worker.wake()
            elif kind == "wake":
                for worker in by_destination.get(message[1], ()):
                    worker.wake(message[2])
            elif kind == "stop":
                break

    def close(self) -> None:
        """Stop the workers, give back what is queued, write what was sent; once."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        for worker in self.workers:
            worker.interrupt()  # all at once: each finishes its send meanwhile
        log.info("sender process: stopping; the sends in progress finish first")
        for thread in self._threads:
            if thread.name != "sent-log":
                thread.join(STOP_TIMEOUT)
        if self.sent_log is not None:
            self.sent_log.interrupt()
        for thread in self._threads:
            thread.join(5)
        if self.outbox is not None:
            close_workers(self.workers, self.outbox, self.queues)
        if self.sent_log is not None:
            self.sent_log.close()
        if self.store is not None:
            self.store.close()
        with self._counted:
            self._closing = True
            self._counted.notify()
        if self._counter.is_alive():
            self._counter.join(5)  # every count is sent before "stopped"


def die_with_parent(parent_pid: int, name: str) -> None:
    """Have the kernel kill this process when ``notifier serve`` dies (Linux), like a thread;
    and call it ``name`` (what ``ps -o comm`` and ``top`` show; 15 bytes at most)."""
    libc_name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("cannot ask to die with notifier serve: %s",
                        os.strerror(ctypes.get_errno()))
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    # The parent may have died before the request above took effect.
    if os.getppid() != parent_pid:
        os._exit(1)
