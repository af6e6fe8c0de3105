"""A job run every few seconds in its own thread, until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import NotifierError

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``job()`` every ``interval`` seconds in a daemon thread named ``name``.

    A :class:`NotifierError` from the job (the database is away, say) is
    logged and the next run goes ahead; anything else is a bug and ends it.
    """

    def __init__(self, name: str, interval: float, job: Callable[[], object]):
        self.name = name
        self.interval = interval
        self.job = job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.job()
            except NotifierError as exc:
                log.error("%s: %s", self.name, exc)
