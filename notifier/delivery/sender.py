"""A child process that sends the notifications of some destinations (SMTP mail, feeds).

``notifier serve`` is one Python process: its ingest thread (matching,
rendering, recording) and its delivery threads share one interpreter lock.
An SMTP send is four round trips, and after each reply the worker must win
the lock back from a busy ingest, so under load mail waits on the ingest,
not on the server; storing feed items is database work that takes the lock
from the ingest. :class:`SenderProcess` runs those workers in a process of
their own instead, with its own database connection, its own
:class:`~notifier.delivery.handoff.SentLog` and its own queues, on the
other core.

Nothing about the outbox changes: the ingest records each notification
already claimed and hands the row over the pipe, exactly as it would put it
in a local :class:`~notifier.delivery.handoff.DueQueue`; the database stays
the record. If the child dies, the rows it held come due again when their
claims run out, and a new child takes them; if ``notifier serve`` is killed,
the kernel kills the child with it (Linux), as it would a thread.

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
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import NotifierError
from ..logs import log_to_stderr
from ..storage.outbox import OutboxRow
from .handoff import QUEUE_LIMIT, DueQueue, SentLog
from .workers import build_workers, stop_workers

log = logging.getLogger(__name__)

#: seconds before starting another child after one died, doubling up to RESTART_MAX
RESTART_FIRST = 1.0
RESTART_MAX = 30.0
#: how long the child gathers counts for the parent before sending them
COUNT_DELAY = 0.01
_PR_SET_PDEATHSIG = 1


class SenderProcess:
    """The parent's handle on the child that sends ``destinations``.

    The ingest asks :meth:`room`, hands rows over with :meth:`put` and
    :meth:`wake`\\ s it like a local worker. ``on_result(destination,
    outcome, n)`` is told what the child's workers did, for the metrics.
    """

    def __init__(self, config: Config, destinations: list[str], *,
                 on_result: Callable[[str, str, int], None], limit: int = QUEUE_LIMIT):
        self.config = config
        self.destinations = list(destinations)
        self.on_result = on_result
        self.limit = limit
        self.names = [f"sender:{d}" for d in self.destinations]
        self._in_flight = dict.fromkeys(self.destinations, 0)
        self._lock = threading.Lock()  # guards the counts, the pipe and the process
        self._sending = threading.Lock()  # one message at a time on the pipe
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: Any = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    # -- the parent's side ---------------------------------------------------

    def start(self) -> None:
        """Start the child; until it is ready, :meth:`room` is 0 and rows wait in the database."""
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="sender-watch", daemon=True)
        self._thread.start()

    def room(self, destination: str) -> int:
        """How many more rows of ``destination`` the child takes now."""
        if not self._ready.is_set():
            return 0
        with self._lock:
            return max(0, self.limit - self._in_flight[destination])

    def put(self, destination: str, rows: list[OutboxRow]) -> bool:
        """Hand claimed rows to the child; False when it is not running (give them back)."""
        # Counted before sending: the child's "taken" report may come back before send returns.
        with self._lock:
            self._in_flight[destination] += len(rows)
        if self._send(("rows", destination, rows)):
            return True
        with self._lock:
            self._in_flight[destination] = max(0, self._in_flight[destination] - len(rows))
        return False

    def wake(self, destination: str, database: bool = False) -> None:
        """Tell the child's workers of ``destination`` that rows may be due."""
        # A child that is not running yet looks in the database when it starts.
        self._send(("wake", destination, database))

    def stop(self, timeout: float = 30.0) -> None:
        """Let the child finish its sends, give back what it held, and exit."""
        self._stopping.set()
        self._send(("stop",))
        if self._thread is not None:
            self._thread.join(timeout)
        process = self._process
        if process is not None and process.is_alive():
            process.join(5)
            if process.is_alive():
                log.error("the sender process did not stop within %.0f s; killing it",
                          timeout + 5)
                process.kill()
                process.join(5)
        if self._thread is not None:
            self._thread.join(5)

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        process = ctx.Process(
            target=run_child, name="notifier-sender", daemon=True,
            args=(self.config, self.destinations, child_end, logging.getLogger().level,
                  os.getpid()))
        process.start()
        child_end.close()
        with self._sending, self._lock:
            self._conn, self._process = parent_end, process
            self._in_flight = dict.fromkeys(self.destinations, 0)
        self._started_at = time.monotonic()

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
                # The child is gone; _watch sees its end of the pipe close and starts another.
                return False
        return True

    def _watch(self) -> None:
        """Read what the child reports; start another child when one dies unasked."""
        delay = RESTART_FIRST
        while True:
            try:
                self._read(self._conn)
            except Exception:
                # A report this side cannot take (a bug): show it, and treat the child as
                # lost, so a new one starts rather than mail going silent.
                log.exception("reading the sender process's reports")
                self._process.kill()
            self._ready.clear()
            process = self._process
            process.join(5)
            if self._stopping.is_set():
                self._stopped.set()
                return
            if time.monotonic() - self._started_at > RESTART_MAX * 2:
                delay = RESTART_FIRST  # it ran well for a while: this is a new failure
            log.error("the sender process (pid %s) for %s exited with code %s; starting "
                      "another in %.0f s (what it held is due again when its claims run out)",
                      process.pid, ", ".join(self.destinations), process.exitcode, delay)
            while not self._stopping.wait(delay):
                delay = min(RESTART_MAX, delay * 2)
                try:
                    self._spawn()
                except OSError as exc:
                    log.error("cannot start another sender process (trying again in "
                              "%.0f s): %s", delay, exc)
                    continue
                self.restarts += 1
                break
            if self._stopping.is_set():
                if self._process is not process:
                    self._send(("stop",))
                    continue  # read the new child's reports until it stops
                self._stopped.set()
                return

    @property
    def ready(self) -> bool:
        """Whether a child is running and taking rows."""
        return self._ready.is_set()

    def _read(self, conn: Any) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "outcome":
                try:
                    self.on_result(message[1], message[2], message[3])
                except Exception:
                    # A broken counter must not stop this thread: it restarts the child.
                    log.exception("counting the sender process's %s %s", message[1], message[2])
            elif kind == "taken":
                with self._lock:
                    self._in_flight[message[1]] = max(0, self._in_flight[message[1]] - message[2])
            elif kind == "ready":
                self.names = list(message[1])
                self._ready.set()
                log.info("sender process (pid %s) ready: %s", self._process.pid,
                         ", ".join(self.names))
            elif kind == "failed":
                log.error("the sender process could not start: %s", message[1])
            elif kind == "stopped":
                return


# -- the child's side ------------------------------------------------------------


def run_child(config: Config, destinations: list[str], conn: Any, log_level: int,
              parent_pid: int) -> None:
    """The child process: the workers of ``destinations``, fed through ``conn``."""
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group: notifier serve drains this process itself.
    # SIGTERM (sent to every process of a service by its supervisor, or by
    # multiprocessing to a child left behind at exit) makes it stop as on "stop".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    # Unlike notifier serve, this process keeps the interpreter's default switch interval:
    # its threads wait on sockets and let go of the interpreter by themselves, and forced
    # switches only cost (measured: p50 9.7-9.8 ms here against 11.2-13.1 ms at 0.5 ms).
    log_to_stderr(log_level)
    child = _Child(config, destinations, conn)
    try:
        try:
            child.start()
        except NotifierError as exc:
            child.report("failed", str(exc))
            child.close()
            sys.exit(1)
        gc.collect()
        gc.freeze()  # as notifier serve does: full collections skip what start-up made
        child.serve()
    except _Stop:
        log.info("sender process: SIGTERM; stopping")
    child.close()
    child.report("stopped")


class _Child:
    def __init__(self, config: Config, destinations: list[str], conn: Any):
        self.config = config
        self.destinations = destinations
        self.conn = conn
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

        self.store = Store.from_config(self.config, create=False)
        outbox = Outbox(self.store)
        self.outbox = outbox
        self.sent_log = SentLog(outbox)
        self.queues = {d: DueQueue(d, on_take=lambda n, d=d: self.count("taken", d, n=n))
                       for d in self.destinations}
        backends = {d: backend_class(d)(self.config) for d in self.destinations}
        self.workers = build_workers(
            self.config, outbox, backends, queues=self.queues, sent=self.sent_log,
            on_result=lambda d, outcome, n: self.count("outcome", d, outcome, n=n))
        self._counter.start()
        self.sent_log.start()
        for worker in self.workers:
            worker.start()
        self.report("ready", [worker.name for worker in self.workers])

    def serve(self) -> None:
        by_destination: dict[str, list[Any]] = {}
        for worker in self.workers:
            by_destination.setdefault(worker.destination, []).append(worker)
        while True:
            try:
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
        if self.outbox is not None:
            stop_workers(self.workers, self.outbox, self.queues)
        if self.sent_log is not None:
            self.sent_log.stop()
        if self.store is not None:
            self.store.close()
        with self._counted:
            self._closing = True
            self._counted.notify()
        if self._counter.is_alive():
            self._counter.join(5)  # every count is sent before "stopped"


class _Stop(BaseException):
    """Raised by the SIGTERM handler in the child, to leave its wait for messages."""


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise _Stop


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when ``notifier serve`` dies (Linux), like a thread."""
    libc_name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("cannot ask to die with notifier serve: %s",
                        os.strerror(ctypes.get_errno()))
    # The parent may have died before the request above took effect.
    if os.getppid() != parent_pid:
        os._exit(1)
