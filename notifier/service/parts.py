"""Adapters that make the ingest and the HTTP server supervised parts (see :mod:`.supervisor`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..bus.transport import SubscriberTransport

#: seconds the ingest may go without taking a message off the bus before it counts as
#: stalled (it takes one at least every half second when idle)
INGEST_STALL = 30.0


class _Heartbeat(SubscriberTransport):
    """The ingest's subscriber, noting when it was last asked for a message."""

    def __init__(self, inner: SubscriberTransport):
        self.inner = inner
        self.beat = time.monotonic()

    def recv(self, timeout: float | None = None) -> tuple[bytes, bytes] | None:
        self.beat = time.monotonic()
        try:
            return self.inner.recv(timeout)
        finally:
            self.beat = time.monotonic()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class IngestPart:
    """The ingest as the part ``ingest``.

    :meth:`stalled` asks the ingest itself when it can tell; otherwise it
    reports an ingest that has not gone back to the bus for
    :data:`INGEST_STALL` seconds (stuck in one batch while messages wait).
    """

    name = "ingest"

    def __init__(self, subscriber: SubscriberTransport):
        #: the subscriber to give the ingest: it keeps the heartbeat
        self.subscriber = _Heartbeat(subscriber)
        self.ingest: Any = None
        self._running = False

    def run(self, stopping: threading.Event) -> None:
        self.subscriber.beat = time.monotonic()
        self._running = True
        try:
            self.ingest.run(stopping)
        finally:
            self._running = False

    def stalled(self) -> str | None:
        own = getattr(self.ingest, "stalled", None)
        if own is not None:
            return own()  # type: ignore[no-any-return]
        quiet = time.monotonic() - self.subscriber.beat
        if self._running and quiet >= INGEST_STALL:
            return f"has not taken a message off the bus for {quiet:.0f} s"
        return None


class HttpPart:
    """The stdlib HTTP server as the part ``http``: it serves until ``stopping`` is set."""

    name = "http"

    def __init__(self, server: Any, poll: float = 0.25):
        self.server = server
        server.timeout = poll  # how soon the loop sees stopping

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self.server.handle_request()
