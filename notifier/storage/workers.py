"""The worker registry: every running ``notifier serve`` and its heartbeat.

Several ``notifier serve`` processes, on one machine or several, may share a
PostgreSQL database. Each registers in the table ``workers`` under an id of
its own (:class:`Registry`) and beats every :data:`BEAT` seconds. The outbox
claims a worker takes name it (``outbox.claimed_by``); a claim counts only
while its worker beats: once the heartbeat is older than :data:`DEAD_AFTER`
seconds, any other worker takes the row (see
:meth:`notifier.storage.outbox.Outbox.claim`). So the rows a killed worker
held come due again within ``DEAD_AFTER`` seconds, not when their lease
(:data:`notifier.storage.outbox.LEASE`) runs out.

A worker whose own beats fail (its database connection is cut) must stop
sending what it claimed before the others may take it: :meth:`Registry.holds`
says whether a claim is still this worker's, with :data:`SEND_MARGIN` seconds
to spare. A worker whose heartbeat went stale registers again under a new id,
so what it claimed under the old one stays void, for everyone, itself included.

Clocks: heartbeats are compared against each worker's own clock, as the
outbox's leases are; the machines must keep their clocks in step (NTP).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from ..errors import StorageError
from .schema import workers
from .store import Store

log = logging.getLogger(__name__)

#: seconds between two heartbeats of a worker
BEAT = 1.0
#: a worker whose heartbeat is older than this is dead: its claims are void
DEAD_AFTER = 6.0
#: a worker stops sending what it claimed this long before its claims could be void
SEND_MARGIN = 2.0
#: a dead worker's row is deleted after this long (kept meanwhile for people to read)
FORGET_AFTER = 86400.0


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker, as the table holds it."""

    id: str
    host: str
    pid: int
    role: str
    started: float
    heartbeat: float


def new_id() -> str:
    """A worker id: the host and pid, for people, and a random part, for uniqueness."""
    host = socket.gethostname().split(".")[0][:32]
    return f"{host}:{os.getpid()}:{secrets.token_hex(6)}"


class Registry:
    """This process's entry in ``workers``: :meth:`register`, then :meth:`beat` every BEAT s.

    As a supervised part (``heartbeat``), :meth:`run` beats until stopped.
    ``clock`` is the time the heartbeats are written in (the outbox's clock).
    """

    name = "heartbeat"

    def __init__(self, store: Store, role: str = "all", *,
                 clock: Callable[[], float] = time.time, beat: float = BEAT,
                 dead_after: float = DEAD_AFTER, margin: float = SEND_MARGIN):
        self.store = store
        self.role = role
        self.clock = clock
        self.interval = beat
        self.dead_after = dead_after
        self.margin = margin
        self.id = new_id()
        self._lock = threading.Lock()
        #: clock() of the last beat written (claims are this worker's until it is stale)
        self.beaten_at: float | None = None

    # -- this worker ----------------------------------------------------------

    def register(self) -> None:
        """Write this worker's row (a fresh id if the last one went stale), forget old ones."""
        now = self.clock()
        with self._lock:
            if self.beaten_at is not None and now - self.beaten_at >= self.dead_after:
                self.id = new_id()
            worker_id = self.id
        host = socket.gethostname()[:255]
        with self.store._transaction("register this worker") as conn:
            conn.execute(delete(workers).where(workers.c.heartbeat < now - FORGET_AFTER))
            conn.execute(delete(workers).where(workers.c.id == worker_id))
            conn.execute(insert(workers).values(id=worker_id, host=host, pid=os.getpid(),
                                                role=self.role, started=now, heartbeat=now))
        with self._lock:
            self.beaten_at = now

    def beat(self) -> None:
        """Write this worker's heartbeat; register again if its heartbeat went stale."""
        now = self.clock()
        with self._lock:
            stale = self.beaten_at is None or now - self.beaten_at >= self.dead_after
            worker_id = self.id
        if stale:
            if self.beaten_at is not None:
                log.warning("this worker's heartbeat stopped for %.1f s: what it claimed is "
                            "left to the others; registering again", now - self.beaten_at)
            self.register()
            return
        with self.store._transaction("write this worker's heartbeat") as conn:
            found = conn.execute(update(workers).where(workers.c.id == worker_id)
                                 .values(heartbeat=now)).rowcount
        if not found:  # forgotten meanwhile: its claims are void already
            with self._lock:
                self.beaten_at = None
            self.register()
            return
        with self._lock:
            if self.id == worker_id:
                self.beaten_at = now

    def unregister(self) -> None:
        """Delete this worker's row (stopping): whatever it still claimed is due at once."""
        with self._lock:
            worker_id, self.beaten_at = self.id, None
        with self.store._transaction("unregister this worker") as conn:
            conn.execute(delete(workers).where(workers.c.id == worker_id))

    def holds(self, claimed_by: str | None) -> bool:
        """Whether a claim made for ``claimed_by`` is still this worker's to send."""
        if claimed_by is None:
            return True  # a lease alone (the claim's own time limit applies)
        with self._lock:
            return (claimed_by == self.id and self.beaten_at is not None
                    and self.clock() - self.beaten_at < self.dead_after - self.margin)

    def run(self, stopping: threading.Event) -> None:
        """Beat every BEAT seconds until ``stopping``; a failed beat is logged and retried."""
        failing = False
        while not stopping.is_set():
            try:
                self.beat()
                if failing:
                    log.info("heartbeat written again")
                failing = False
            except StorageError as exc:
                if not failing:
                    log.error("cannot write this worker's heartbeat (trying again every "
                              "%.0f s): %s", self.interval, exc)
                failing = True
            stopping.wait(self.interval)

    def stalled(self) -> str | None:
        """Why the claims of this worker are at risk: its heartbeat is not being written."""
        with self._lock:
            beaten_at = self.beaten_at
        if beaten_at is None:
            return "not registered"
        age = self.clock() - beaten_at
        if age >= self.dead_after - self.margin:
            return f"no heartbeat written for {age:.1f} s"
        return None

    # -- every worker ---------------------------------------------------------

    def live(self) -> list[WorkerInfo]:
        """Every worker whose heartbeat is fresh, oldest first."""
        return [w for w in self.all() if self.clock() - w.heartbeat < self.dead_after]

    def all(self) -> list[WorkerInfo]:
        """Every registered worker, live or dead, oldest first."""
        with self.store._transaction("read the workers", write=False) as conn:
            rows = conn.execute(select(workers).order_by(workers.c.started, workers.c.id))
            return [WorkerInfo(id=r.id, host=r.host, pid=r.pid, role=r.role,
                               started=r.started, heartbeat=r.heartbeat) for r in rows]


class WorkerOf:
    """The claimant of a process that works for a worker (its sender process).

    It claims in the worker's name, and holds those claims while the worker's
    heartbeat is fresh, as the worker itself does (:meth:`Registry.holds`).
    Both are read from the table at most every ``refresh`` seconds, so a
    worker that registered again under a new id is followed.
    """

    def __init__(self, store: Store, worker_id: str, *, clock: Callable[[], float] = time.time,
                 refresh: float = 0.5, dead_after: float = DEAD_AFTER,
                 margin: float = SEND_MARGIN):
        self.store = store
        self.clock = clock
        self.refresh = refresh
        self.dead_after = dead_after
        self.margin = margin
        self._id = worker_id
        self._heartbeat: float | None = None
        self._read_at: float | None = None
        self._lock = threading.Lock()
        self._where: tuple[str, int] | None = None  # the worker's host and pid

    @property
    def id(self) -> str:
        self._read()
        return self._id

    def holds(self, claimed_by: str | None) -> bool:
        if claimed_by is None:
            return True
        self._read()
        with self._lock:
            return (claimed_by == self._id and self._heartbeat is not None
                    and self.clock() - self._heartbeat < self.dead_after - self.margin)

    def _read(self) -> None:
        now = self.clock()
        with self._lock:
            if self._read_at is not None and now - self._read_at < self.refresh:
                return
            self._read_at = now
        try:
            with self.store._transaction("read the worker's heartbeat", write=False) as conn:
                if self._where is None:
                    row = conn.execute(select(workers.c.host, workers.c.pid)
                                       .where(workers.c.id == self._id)).first()
                    if row is None:
                        return
                    self._where = (row.host, row.pid)
                host, pid = self._where
                newest = conn.execute(
                    select(workers.c.id, workers.c.heartbeat)
                    .where(workers.c.host == host, workers.c.pid == pid)
                    .order_by(workers.c.started.desc()).limit(1)).first()
        except StorageError as exc:
            # Unread, the heartbeat ages here, and with it the claims it covers.
            log.debug("cannot read the worker's heartbeat: %s", exc)
            return
        with self._lock:
            if newest is None:
                self._heartbeat = None  # unregistered: its claims are void
            else:
                self._id, self._heartbeat = newest.id, newest.heartbeat


class FixedClaimant:
    """A claimant that is always itself: claims in ``worker_id``'s name, and holds them."""

    def __init__(self, worker_id: str | None):
        self.id = worker_id

    def holds(self, claimed_by: str | None) -> bool:
        return claimed_by is None or claimed_by == self.id
