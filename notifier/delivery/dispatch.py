"""Between the pipeline and the workers: who sends what, in this process or a child.

A :class:`Dispatcher` owns the delivery side of ``notifier serve``: one
worker per backend connection, each destination's hand-off queue, the
sent log, and the sender process that takes SMTP mail and feeds to the
other core. The ingest asks it how many fresh rows each destination takes
now (:meth:`Dispatcher.room`), records that many already claimed, and hands
them over (:meth:`Dispatcher.hand_off`); everything else waits in the
database, where any worker finds it.

The workers, the sent log and the sender process are parts for the
service's supervisor (:meth:`Dispatcher.parts`): :meth:`Dispatcher.setup`
opens the local backends before they start, :meth:`Dispatcher.close` closes
them and gives back what is still queued once they have stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..backends.base import Backend
from ..backends.registry import backend_class
from ..config import Config
from ..storage.outbox import Outbox, OutboxRow
from .handoff import DueQueue, SentLog, give_back
from .pipeline import BatchResult
from .sender import SenderProcess
from .workers import BackendWorker, build_workers, close_workers

log = logging.getLogger(__name__)


class Dispatcher:
    """The workers, queues, sent log and sender process of one service.

    ``backends`` replaces the configured backends (tests); ``on_result(destination,
    outcome, n)`` is told every delivery's outcome, here and in the sender process.
    ``local``: whether this process delivers at all (``notifier serve --role
    ingest`` does not: nothing is claimed for it, everything waits in the
    database for the workers that deliver).
    """

    def __init__(self, config: Config, outbox: Outbox, *, in_memory: bool,
                 on_result: Callable[[str, str, int], None],
                 backends: dict[str, Backend] | None = None, local: bool = True):
        self.config = config
        self.outbox = outbox
        self.local = local
        #: destinations whose workers wait for another process to let go (see stand_by)
        self._standby: set[str] = set()
        self.on_result = on_result
        self.sent_log = SentLog(outbox)
        self.queues: dict[str, DueQueue] = {}
        self.sender: SenderProcess | None = None
        if backends is None:
            backends = self._configured_backends(in_memory)
        self.queues = {name: DueQueue(name) for name in backends}
        self.workers: list[BackendWorker] = build_workers(
            config, outbox, backends, queues=self.queues, sent=self.sent_log,
            on_result=on_result)
        self.by_destination: dict[str, list[BackendWorker]] = {}
        for worker in self.workers:
            self.by_destination.setdefault(worker.destination, []).append(worker)

    def _configured_backends(self, in_memory: bool) -> dict[str, Backend]:
        config = self.config
        names = ["email", "rss"]
        if config.irc.host:
            names.append("irc")
        if config.dbus.user:
            names.append("desktop")
        if config.webpush.contact:
            names.append("webpush")
        if config.matrix.homeserver:
            names.append("matrix")
        backends = {name: backend_class(name)(config) for name in names}
        apart = self._sent_apart(in_memory)
        for name in apart:
            # Check the settings here, where a mistake stops serve from starting.
            backends.pop(name).setup()
        if apart:
            self.sender = SenderProcess(
                config, apart, on_result=self.on_result,
                on_lost=lambda rows: give_back(self.outbox, rows,
                                               "handed to a sender process that exited"),
                claimant=lambda: getattr(self.outbox.claimant, "id", None))
        return backends

    def _sent_apart(self, in_memory: bool) -> list[str]:
        """The destinations a sender process delivers: SMTP mail and feed digests, when asked.

        The child opens the database itself, so an in-memory one keeps them here;
        so does a Maildir, which is a few file writes with no round trips to wait on.
        """
        if not self.config.delivery.sender_process or in_memory:
            return []
        return (["email"] if self.config.email.smtp_host else []) + ["rss"]

    @property
    def destinations(self) -> list[str]:
        """Every destination delivered, here or by the sender process."""
        apart = self.sender.destinations if self.sender is not None else []
        return [*self.by_destination, *apart]

    def setup(self) -> None:
        """Open every local worker's backend: a mistake (no session bus) stops serve here.

        Those standing by open theirs when they start to deliver.
        """
        for worker in self.workers:
            if worker.destination not in self._standby:
                worker.setup()

    def stand_by(self, destination: str, waiting: bool) -> None:
        """Whether ``destination``'s workers wait (another process delivers it) or deliver.

        While they wait, nothing of it is claimed for them; when they start
        waiting, what their queue holds is given back at once.
        """
        if not waiting:
            self._standby.discard(destination)
            return
        self._standby.add(destination)
        queue = self.queues.get(destination)
        if queue is not None:
            give_back(self.outbox, queue.drain(), f"queued {destination}")

    def parts(self) -> list[Any]:
        """The supervised parts: the sent log, every local worker, the sender process."""
        parts: list[Any] = [self.sent_log, *self.workers]
        if self.sender is not None:
            parts.append(self.sender)
        return parts

    def close(self) -> None:
        """After the parts stopped: close the backends, give back what is queued, write
        what was sent."""
        close_workers(self.workers, self.outbox, self.queues)
        self.sent_log.close()

    def room(self) -> dict[str, int]:
        """How many fresh rows each destination takes now (those with room only)."""
        if not self.local:
            return {}
        claim = {d: queue.room() for d, queue in self.queues.items()}
        if self.sender is not None:
            claim.update((d, self.sender.room(d)) for d in self.sender.destinations)
        return {d: room for d, room in claim.items() if room > 0 and d not in self._standby}

    def hand_off(self, result: BatchResult) -> None:
        """Give the rows the pipeline claimed to their workers, and wake the others."""
        handed: dict[str, list[OutboxRow]] = {}
        for row in result.claimed:
            handed.setdefault(row.destination, []).append(row)
        for destination, rows in handed.items():
            if destination in self._standby:
                # Its workers started waiting since the rows were claimed: due elsewhere.
                give_back(self.outbox, rows, f"{destination} (delivered by another worker)")
            elif destination in self.queues:
                self.queues[destination].put(rows)
            elif self.sender is None or not self.sender.put(destination, rows):
                # The sender process just died: due again at once, for its successor.
                give_back(self.outbox, rows, f"{destination} (sender process not running)")
        for destination, n in result.sent_at_once.items():
            self.on_result(destination, "sent", n)  # the live stream's: delivered as recorded
        for destination, n in result.per_destination.items():
            waiting = n - result.sent_at_once.get(destination, 0)
            if waiting > 0:
                # Rows not handed over (no room, a digest's) wait in the database: look there.
                self.wake(destination, database=len(handed.get(destination, ())) < waiting)

    def wake(self, destination: str, database: bool = True) -> None:
        """Tell the workers of ``destination`` that rows may be due."""
        if self.sender is not None and destination in self.sender.destinations:
            self.sender.wake(destination, database)
        for worker in self.by_destination.get(destination, ()):
            worker.wake(database)

    def health(self) -> dict[str, Any]:
        """The workers' names and the sender process's state, for ``/healthz``."""
        names = [w.name for w in self.workers]
        health: dict[str, Any] = {"workers": sorted(
            names + (self.sender.names if self.sender is not None else []))}
        if self.sender is not None:
            health["sender"] = {"ready": self.sender.ready,
                                "destinations": list(self.sender.destinations)}
        return health

    def describe(self) -> str:
        """What delivers where, for the start-up log (the Maildir's path, the SMTP server)."""
        def local(destination: str, workers: list[BackendWorker]) -> str:
            details = [f"x{len(workers)}"] if len(workers) > 1 else []
            where = getattr(workers[0].backend, "where", None)
            if where:
                details.append(str(where))
            return f"{destination} ({', '.join(details)})" if details else destination

        text = ", ".join(local(d, ws) for d, ws in self.by_destination.items())
        if self.sender is not None:
            email = self.config.email
            text += "; from a sender process of its own: " + ", ".join(
                f"email (SMTP server {email.smtp_host}:{email.smtp_port}, "
                f"{email.connections} connections)" if d == "email"
                else d for d in self.sender.destinations)
        return text.lstrip("; ")
