"""Backend workers: one thread per destination, sending what the outbox has due."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..backends.base import Backend
from ..config import Config
from ..errors import DeliveryError, NotifierError, PermanentDeliveryError
from .outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

#: the longest a worker sleeps before looking at the outbox again
IDLE_POLL = 1.0



class BackendWorker:
    """Sends due notifications of one destination through one backend.

    ``wake()`` is called when new rows may be due; otherwise the worker
    sleeps until the next retry is due, or :data:`IDLE_POLL` seconds.
    ``on_result(destination, outcome)`` is told ``sent``, ``failed`` or ``dead``.
    """

    def __init__(self, config: Config, outbox: Outbox, backend: Backend, *,
                 user: str | None = None,
                 on_result: Callable[[str, str, int], None] | None = None,
                 batch: int = 100, chunk: int = 20, name: str | None = None):
        self.config = config
        self.outbox = outbox
        self.backend = backend
        self.destination = backend.name
        self.user = user
        self.batch = batch
        self.chunk = chunk
        self.name = name or f"worker-{self.destination}"
        self.on_result = on_result or (lambda destination, outcome, n: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()

    def start(self) -> None:
        self.backend.setup()
        self._thread = threading.Thread(target=self._run, name=self.name,
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the send in progress, then stop and close the backend."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.backend.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except NotifierError as exc:
                # The database is unreachable or the like: say so, and try again shortly.
                log.error("%s worker: %s", self.destination, exc)
                worked = False
                self._stop.wait(IDLE_POLL)
            if worked:
                continue
            self.idle.set()
            due = self.outbox.next_due(self.destination)
            wait = IDLE_POLL if due is None else min(IDLE_POLL, max(0.0, due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()
            self.idle.clear()

    def run_once(self) -> bool:
        """Send one batch of due notifications; return whether there was any."""
        rows = self.outbox.claim(self.destination, self.batch, user=self.user)
        if not rows:
            return False
        # Successes are recorded after every chunk, so a crash repeats few sends,
        # while a backend that can (a feed: one transaction) takes a chunk at once.
        for start in range(0, len(rows), self.chunk):
            if self._stop.is_set():
                break  # the claims expire; what was not sent is sent after a restart
            chunk = rows[start:start + self.chunk]
            outcomes = self.backend.send_batch([row.notification for row in chunk])
            sent = []
            for row, error in zip(chunk, outcomes, strict=True):
                if error is None:
                    sent.append(row.id)
                else:
                    self._failed(row, error)
            self._flush(sent)
        return True

    def _flush(self, sent: list[int]) -> None:
        if sent:
            self.outbox.mark_sent(sent)
            self.on_result(self.destination, "sent", len(sent))

    def _failed(self, row: OutboxRow, exc: DeliveryError) -> None:
        permanent = isinstance(exc, PermanentDeliveryError)
        delivery = self.config.delivery
        state = self.outbox.mark_failed(row, str(exc), permanent=permanent,
                                        max_attempts=delivery.max_attempts,
                                        base=delivery.retry_base, cap=delivery.retry_max)
        log.log(logging.ERROR if state == "dead" else logging.WARNING,
                "%s to %s (%s) %s: %s", self.destination, row.user, row.msg_id,
                "is dead" if state == "dead" else f"failed, attempt {row.attempts + 1}", exc)
        self.on_result(self.destination, state, 1)
