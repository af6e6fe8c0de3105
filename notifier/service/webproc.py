"""The HTTP side of ``notifier serve`` in a child process of its own (``[http] process``).

In one process, every request waits for its turns at the interpreter lock
behind the ingest (describing, matching, rendering, recording): under a busy
bus, a request that needs a millisecond of work answered in tens or hundreds.
:class:`WebProcess` serves the same application
(:class:`~notifier.web.WebServer`) from a child process instead, with its own
database connection and its own copy of the users, so that the kernel shares
the cores between the two and a request is answered as fast as on a quiet bus.

``notifier serve`` binds ``[http] listen`` itself (a clash stops it at start,
as before) and hands the listening socket to each child it starts; clients
queue in the socket's backlog while a child restarts. The child is a part under
serve's supervisor, named ``http`` as the thread was: if it dies, another is
started after a backoff, and a restart is counted; if serve dies, the kernel
kills the child with it (Linux).

What the child asks of serve, over a pipe, and waits for:

* ``health``: ``/healthz`` is the service's health, the HTTP process's included
  (when serve does not answer within :data:`ASK_TIMEOUT`, 503 says so);
* ``metrics``: serve's metrics, to which the child adds its own (live streams);
* ``changed``: a route changed rules or users: serve applies its change log
  before the answer goes back, as it does in one process.

Serve tells the child ``recorded`` (new outbox and inbox rows: the live
streams read them) and ``stop``. The child keeps its users current from the
change log itself, as serve does.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ..config import Config
from ..errors import NotifierError, ServiceError
from ..logs import log_to_stderr
from ..web.binding import bind_listener

log = logging.getLogger(__name__)

#: seconds the child waits for serve to answer one of its questions
ASK_TIMEOUT = 5.0
#: seconds serve waits for a child told to stop before killing it (open requests finish)
STOP_TIMEOUT = 15.0
#: seconds a child may take to start (read its users) before it counts as stalled
STALL_AFTER = 120.0


class WebProcess:
    """The supervised part ``http``, serving from a child process (module docstring)."""

    name = "http"

    def __init__(self, config: Config, *, health: Callable[[str], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes], changed: Callable[[], object]):
        self.config = config
        self._health = health
        self._metrics = metrics
        self._changed = changed
        self.socket = bind_listener(config)
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: Any = None
        self._sending = threading.Lock()
        self._recorded = threading.Event()
        self._ready = threading.Event()
        self._spawned_at = time.monotonic()

    @property
    def address(self) -> tuple[str, int]:
        """The host and port actually bound (the port chosen, for port 0)."""
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def ready(self) -> bool:
        """Whether a child is serving."""
        return self._ready.is_set()

    def on_recorded(self) -> None:
        """New rows were recorded (from the ingest's thread): never blocks, never fails."""
        self._recorded.set()

    def stalled(self) -> str | None:
        waited = time.monotonic() - self._spawned_at
        if self._process is not None and not self._ready.is_set() and waited >= STALL_AFTER:
            return f"the HTTP process has not been ready for {waited:.0f} s"
        return None

    def close(self) -> None:
        """Release the listening socket (after the last :meth:`run`)."""
        self.socket.close()

    # -- running a child -------------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        """Start a child, answer its questions, stop it when ``stopping`` is set.

        Raises :class:`ServiceError` when the child exits although nobody asked it to.
        """
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        process = ctx.Process(target=run_child, name="notifier-http", daemon=True,
                              args=(self.config, self.socket, child_end,
                                    logging.getLogger().level, os.getpid()))
        self._spawned_at = time.monotonic()
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        failure: str | None = None
        notifier = threading.Thread(target=self._tell_recorded, args=(stopping, parent_end),
                                    name="http-recorded", daemon=True)
        notifier.start()
        try:
            failure = self._serve_child(stopping, parent_end, process)
        finally:
            self._ready.clear()
            with self._sending:
                self._conn = None
            parent_end.close()
            notifier.join(2)
            process.join(5)
            if process.is_alive():
                log.error("the HTTP process (pid %s) did not exit; killing it", process.pid)
                process.kill()
                process.join(5)
        if stopping.is_set() and process.exitcode in (0, -signal.SIGTERM, -signal.SIGKILL):
            return
        why = f": {failure}" if failure else ""
        raise ServiceError(f"the HTTP process (pid {process.pid}) exited with code "
                           f"{process.exitcode}{why}")

    def _serve_child(self, stopping: threading.Event, conn: Any, process: Any) -> str | None:
        """Answer the child until its end of the pipe closes; return why it failed, if it said."""
        stop_at: float | None = None
        failure = None
        while True:
            if stopping.is_set():
                if stop_at is None:
                    self._send(("stop",))
                    stop_at = time.monotonic() + STOP_TIMEOUT
                elif time.monotonic() > stop_at:
                    log.error("the HTTP process did not stop within %.0f s; killing it",
                              STOP_TIMEOUT)
                    process.kill()
                    return failure
            try:
                if not conn.poll(0.2):
                    if not process.is_alive():
                        return failure
                    continue
                message = conn.recv()
            except (EOFError, OSError):
                return failure
            kind = message[0]
            if kind == "ask":
                self._answer(message[1], message[2], message[3:])
            elif kind == "ready":
                self._ready.set()
                log.info("HTTP process (pid %s) serving on %s", process.pid,
                         self.config.http.listen)
            elif kind == "failed":
                failure = str(message[1])
                self._ready.clear()

    def _answer(self, number: int, question: str, args: tuple[Any, ...]) -> None:
        try:
            if question == "health":
                answer: Any = self._health(*args)
            elif question == "metrics":
                answer = self._metrics()
            elif question == "changed":
                answer = self._changed()
            else:
                raise ServiceError(f"unknown question {question!r}")
        except Exception as exc:  # the child gets the failure; serve goes on
            log.exception("answering the HTTP process's %s", question)
            self._send(("answer", number, False, f"{type(exc).__name__}: {exc}"))
            return
        self._send(("answer", number, True, answer))

    def _tell_recorded(self, stopping: threading.Event, conn: Any) -> None:
        # A thread of its own, so that the ingest never waits on the pipe.
        while not stopping.is_set() and self._conn is conn:
            if self._recorded.wait(0.5):
                self._recorded.clear()
                self._send(("recorded",))

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._sending:
            if self._conn is None:
                return
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                pass  # the child is gone; run() sees its end of the pipe close


# -- the child's side ------------------------------------------------------------------


class _Parent:
    """The child's questions to serve, each answered in turn by the reader thread."""

    def __init__(self, conn: Any):
        self.conn = conn
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._waiting: dict[int, Future[Any]] = {}

    def send(self, *message: Any) -> None:
        with self._lock:
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                log.debug("serve gone; not sending %s", message[0])

    def ask(self, question: str, *args: Any) -> Any:
        """Serve's answer; :class:`ServiceError` if it fails or does not come in time."""
        number = next(self._numbers)
        future: Future[Any] = Future()
        self._waiting[number] = future
        self.send("ask", number, question, *args)
        try:
            ok, answer = future.result(ASK_TIMEOUT)
        except FutureTimeout:
            raise ServiceError(f"notifier serve did not answer {question!r} within "
                               f"{ASK_TIMEOUT:.0f} s") from None
        finally:
            self._waiting.pop(number, None)
        if not ok:
            raise ServiceError(f"notifier serve could not answer {question!r}: {answer}")
        return answer

    def answered(self, number: int, ok: bool, answer: Any) -> None:
        future = self._waiting.get(number)
        if future is not None and not future.done():
            future.set_result((ok, answer))

    def health(self, kind: str) -> tuple[bool, dict[str, Any]]:
        try:
            return self.ask("health", kind)
        except ServiceError as exc:
            return False, {"status": "unavailable", "http": str(exc)}

    def metrics(self) -> bytes:
        try:
            return self.ask("metrics")
        except ServiceError as exc:
            log.warning("metrics: %s", exc)
            return b""


def run_child(config: Config, listener: socket.socket, conn: Any, log_level: int,
              parent_pid: int) -> None:
    """The child process: the web application on ``listener``, until serve says stop.

    Exits 0 when told to stop (or when serve went away), 1 when it could not
    start or its server failed: serve's supervisor then starts another.
    """
    from ..delivery.sender import die_with_parent

    # Ctrl-C and systemd's SIGTERM reach the whole process group: serve stops this
    # process in its turn, last, so that requests are answered while it drains.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid, "notifier-http")
    log_to_stderr(log_level)
    sys.setswitchinterval(0.0005)  # as serve: requests are short, the event loop waits less
    parent = _Parent(conn)
    stopping = threading.Event()
    try:
        web, watcher = _build(config, listener, parent)
    except NotifierError as exc:
        log.error("HTTP process: could not start: %s", exc)
        parent.send("failed", str(exc))
        sys.exit(1)
    reader = threading.Thread(target=_read, args=(conn, parent, web, stopping), name="pipe",
                              daemon=True)
    reader.start()
    changes = threading.Thread(target=_keep_users, args=(watcher, stopping), name="changes",
                               daemon=True)
    changes.start()
    failures: list[str] = []
    # Off the main thread, where uvicorn leaves the signals alone: serve says when to stop.
    server = threading.Thread(target=_serve, args=(web, stopping, failures), name="http")
    server.start()
    parent.send("ready")
    server.join()
    web.close()
    if failures:
        parent.send("failed", failures[0])
        sys.exit(1)


def _serve(web: Any, stopping: threading.Event, failures: list[str]) -> None:
    try:
        web.run(stopping)
    except NotifierError as exc:
        log.error("HTTP process: %s", exc)
        failures.append(str(exc))
    finally:
        stopping.set()


def _build(config: Config, listener: socket.socket, parent: _Parent) -> tuple[Any, Any]:
    from ..render import verify_unsubscribe_token
    from ..storage import Store
    from ..storage.destinations import Destinations
    from ..storage.mutes import Mutes
    from ..storage.outbox import Outbox
    from ..users.cache import UserCache
    from ..web import WebServer
    from .changes import ChangeWatcher

    store = Store.from_config(config, create=False)
    outbox = Outbox(store)
    secret = outbox.secret()
    destinations = Destinations(store)
    users = UserCache(config, store, shape=destinations.deliverable)
    users.preload(destinations.deliverable_all(store.list_users()))
    watcher = ChangeWatcher(store, _UsersOnly(), users)

    def changed() -> None:
        watcher.poll()
        parent.ask("changed")

    def check_unsubscribe(token: str) -> tuple[str, str]:
        return verify_unsubscribe_token(secret, token)

    def unsubscribe(token: str) -> tuple[str, str]:
        user, rule = verify_unsubscribe_token(secret, token)
        Mutes(store).mute_named(user, rule)
        changed()
        log.info("%s muted rule %r through an unsubscribe link", user, rule)
        return user, rule

    web = WebServer(config, store=store, outbox=outbox, users=users, health=parent.health,
                    metrics=parent.metrics, check_unsubscribe=check_unsubscribe,
                    unsubscribe=unsubscribe, listener=listener)
    web.api.changed = changed
    return web, watcher


class _UsersOnly:
    """The change log's rule and owner changes are serve's matcher's business, not ours."""

    def replace_rule(self, rule: Any) -> None: ...
    def remove_rule(self, user: str, name: str) -> None: ...
    def add_owner(self, package: str, kind: str, name: str) -> None: ...
    def remove_owner(self, package: str, kind: str, name: str) -> None: ...
    def replace_all(self, other: Any) -> None: ...


def _read(conn: Any, parent: _Parent, web: Any, stopping: threading.Event) -> None:
    """What serve says: answers, ``recorded``, ``stop``; its going away stops us too."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            log.warning("notifier serve went away; the HTTP process stops")
            break
        kind = message[0]
        if kind == "answer":
            parent.answered(message[1], message[2], message[3])
        elif kind == "recorded":
            web.on_recorded()
        elif kind == "stop":
            break
    stopping.set()


def _keep_users(watcher: Any, stopping: threading.Event) -> None:
    """Forget users as the change log says, every second, until the process stops."""
    while not stopping.wait(watcher.interval):
        try:
            watcher.poll()
        except NotifierError as exc:  # tried again at the next poll
            log.warning("HTTP process: reading the change log: %s", exc)
