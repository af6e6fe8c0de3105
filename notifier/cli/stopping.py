"""Waiting for SIGINT or SIGTERM in a long-running command, without a lock in the handler.

A handler that calls ``threading.Event.set()`` takes the event's lock in the
main thread; a second signal arriving while the first handler holds it runs
a second handler, nested in the first, which waits for that lock forever.
systemd (or ``timeout``, or a second Ctrl-C) sends signals that close
together, and ``notifier serve`` then hung instead of stopping. The handlers
here only note the signal; the main thread looks every :data:`POLL` seconds.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

#: seconds between two looks at the signals noted
POLL = 0.2


class StopSignals:
    """Notes SIGINT and SIGTERM from the moment it is made; :meth:`wait` for one."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)):
        self.received: list[int] = []
        for sig in signals:
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)  # no lock: see the module docstring

    def wait(self, also: threading.Event | None = None) -> None:
        """Return once a signal was noted, or ``also`` is set (by another thread)."""
        event = also if also is not None else threading.Event()
        while not self.received:
            if event.wait(POLL):
                return
