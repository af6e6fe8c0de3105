"""Parts that must run once among all workers, held through a PostgreSQL advisory lock.

Several ``notifier serve`` processes may share one PostgreSQL database. Some
parts must run in one of them only: the IRC connection (one nick on the
network), the IRC firehose bot, the digest scheduler and housekeeping.
:class:`Leader` wraps such a part: it runs the part only while it holds the
session advisory lock named after the part on a connection of its own
(``pg_try_advisory_lock``), and tries again every :data:`RETRY` seconds
while another worker holds it. When that worker dies, its connection closes,
the server lets go of its lock, and the next try here takes it: the part
moves within a few seconds.

While it runs the part, the wrapper checks its connection every
:data:`CHECK` seconds; if it dropped (the server was restarted, the session
was terminated), the lock is gone with it: the part is stopped at once, and
the wrapper competes for the lock again, as it does while the database
cannot be reached (said by :meth:`Leader.stalled`, so ``/healthz`` tells).
A failure of the part itself propagates, for the supervisor to restart it.

The lock's key is made of the database, its schema and the part's name, so
installations sharing a PostgreSQL server do not exclude each other. On
SQLite (one service per database) the lock is always held.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ServiceError
from ..storage.store import Store

log = logging.getLogger(__name__)

#: seconds between two tries to take a lock another worker holds
RETRY = 2.0
#: seconds between two checks that the connection holding the lock is still up
CHECK = 1.0
#: seconds a part gets to stop when the lock is lost
STOP_TIMEOUT = 30.0

_TRY_LOCK = text("SELECT pg_try_advisory_lock("
                 "hashtext(current_database() || '/' || current_schema()), hashtext(:name))")


class Leader:
    """Runs ``part`` only while this worker holds the lock for ``part.name``.

    ``on_lead(True)`` is called after the lock is taken, before the part
    starts; ``on_lead(False)`` after the part stopped, whatever the reason
    (to close connections, give back rows). A supervised part itself:
    ``name``, ``run``, ``interrupt``, ``stalled``.
    """

    def __init__(self, part: Any, store: Store, *,
                 on_lead: Callable[[bool], None] | None = None,
                 retry: float = RETRY, check: float = CHECK):
        self.part = part
        self.name: str = part.name
        self.store = store
        self.on_lead = on_lead or (lambda leading: None)
        self.retry = retry
        self.check = check
        #: whether this worker runs the part now
        self.leading = False
        self._stopping = threading.Event()
        self._inner: threading.Event | None = None
        #: why the lock cannot be competed for now (the database away), else None
        self.problem: str | None = None

    @property
    def shared(self) -> bool:
        """Whether other workers may run on this database (the lock means anything)."""
        return self.store.dialect == "postgresql"

    def run(self, stopping: threading.Event) -> None:
        """Wait for the lock, run the part while it is held; return when ``stopping``."""
        self._stopping = stopping
        if not self.shared:
            self._lead(stopping, None)
            return
        while not stopping.is_set():
            conn = self._acquire(stopping)
            if conn is None:
                return
            try:
                lost = self._lead(stopping, conn)
            finally:
                self._let_go(conn)
            if lost is None:
                return
            log.error("%s: the connection holding its lock dropped (%s); stopped here, "
                      "competing for the lock again", self.name, lost)

    def _acquire(self, stopping: threading.Event) -> Any:
        """A connection holding the lock, or None once ``stopping`` is set."""
        waited = False
        while not stopping.is_set():
            conn = None
            try:
                conn = self.store.engine.connect()
                held = conn.execute(_TRY_LOCK, {"name": f"notifier:{self.name}"}).scalar()
                conn.commit()
            except SQLAlchemyError as exc:
                if conn is not None:
                    self._let_go(conn)
                problem = (f"cannot take its lock (trying again every {self.retry:g} s): "
                           f"{str(exc).splitlines()[0]}")
                if self.problem is None:
                    log.error("%s: %s", self.name, problem)
                self.problem = problem
                stopping.wait(self.retry)
                continue
            if self.problem is not None:
                log.info("%s: the database answers again", self.name)
                self.problem = None
            if held:
                if waited:
                    log.info("%s: this worker took it over (the one running it stopped)",
                             self.name)
                return conn
            conn.close()  # holds no lock: back to the pool, for the next try
            if not waited:
                log.info("%s runs in another worker; this one stands by", self.name)
                waited = True
            stopping.wait(self.retry)
        return None

    def _lead(self, stopping: threading.Event, conn: Any) -> str | None:
        """Run the part in a thread of its own while the lock holds.

        Returns why the lock was lost, or None when ``stopping``; raises what the
        part raised.
        """
        inner = threading.Event()
        self._inner = inner
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self.part.run(inner)
            except BaseException as exc:  # handed to the supervisor through run()
                failure.append(exc)

        self.leading = True
        self.on_lead(True)
        thread = threading.Thread(target=work, name=f"{self.name}-leading", daemon=True)
        thread.start()
        lost: str | None = None
        try:
            while thread.is_alive() and not stopping.is_set():
                thread.join(self.check)
                if conn is not None and thread.is_alive() and not stopping.is_set():
                    lost = self._lost(conn)
                    if lost is not None:
                        break
        finally:
            inner.set()
            self._interrupt_part()
            thread.join(STOP_TIMEOUT)
            self.leading = False
            self._inner = None
            try:
                self.on_lead(False)
            except Exception:  # the part is stopped; the lock must still be let go
                log.exception("%s: after it stopped", self.name)
        if failure:
            raise failure[0]
        if lost is not None:
            return lost
        if not stopping.is_set():
            raise ServiceError(f"{self.name} returned although nobody asked it to stop")
        return None

    def _lost(self, conn: Any) -> str | None:
        try:
            conn.execute(text("SELECT 1")).scalar()
            conn.commit()
        except SQLAlchemyError as exc:
            return str(exc).splitlines()[0]
        return None

    @staticmethod
    def _let_go(conn: Any) -> None:
        """Close the connection for good: its session, and so its lock, ends with it."""
        try:
            conn.invalidate()
        except SQLAlchemyError:
            pass  # a connection already broken holds nothing
        finally:
            conn.close()

    def interrupt(self) -> None:
        """Cut short the part's wait (``stopping`` is set)."""
        self._interrupt_part()

    def _interrupt_part(self) -> None:
        interrupt = getattr(self.part, "interrupt", None)
        if interrupt is not None and self._inner is not None:
            interrupt()

    def stalled(self) -> str | None:
        """The part's own answer while it runs here; standing by, whether the lock can be
        competed for."""
        if not self.leading:
            return self.problem
        stalled = getattr(self.part, "stalled", None)
        if stalled is None:
            return None
        result: str | None = stalled()
        return result

    @property
    def ready(self) -> bool:
        return not self.leading or getattr(self.part, "ready", True) is not False
