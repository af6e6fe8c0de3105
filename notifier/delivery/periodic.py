"""A job run every few seconds, as a part of ``notifier serve`` (see its supervisor)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import StorageError

log = logging.getLogger(__name__)

#: seconds a job may keep failing (the database away, say) before it counts as stalled
STALL_AFTER = 60.0


class Periodic:
    """Calls ``job()`` every ``interval`` seconds while :meth:`run` runs.

    A :class:`~notifier.errors.StorageError` from the job (the database is
    away) is logged, once per distinct message, and the next run goes ahead; after
    :data:`STALL_AFTER` seconds of such failures :meth:`stalled` says so.
    Anything else is a bug: it propagates out of :meth:`run`, for the
    supervisor to log and restart.
    """

    def __init__(self, name: str, interval: float, job: Callable[[], object]):
        self.name = name
        self.interval = interval
        self.job = job
        self._wake = threading.Event()
        self._failing_since: float | None = None
        self._problem: str | None = None

    def run(self, stopping: threading.Event) -> None:
        """Run the job every ``interval`` seconds until ``stopping`` is set."""
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if stopping.is_set():
                return
            self.run_once()

    def run_once(self) -> None:
        """Run the job now (a failure other than a StorageError propagates)."""
        try:
            self.job()
        except StorageError as exc:  # the database is away: the next run tries again
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            if str(exc) != self._problem:
                self._problem = str(exc)
                log.error("%s: %s (trying again every %g s)", self.name, exc, self.interval)
            return
        if self._problem is not None:
            log.info("%s works again", self.name)
        self._failing_since = self._problem = None

    def interrupt(self) -> None:
        """Cut the wait short (``stopping`` is set)."""
        self._wake.set()

    def stalled(self) -> str | None:
        """The job's error, once it has failed for STALL_AFTER seconds on end."""
        since = self._failing_since
        if since is None or time.monotonic() - since < STALL_AFTER:
            return None
        return f"failing for {time.monotonic() - since:.0f} s: {self._problem}"
