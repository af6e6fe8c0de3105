"""The ingest loop: from the bus, through the pipeline, to the dispatcher.

It takes messages off the bus in batches (whatever the socket already holds
when the first one is taken, so a lone message goes through at once),
checks each one, runs the batch through the :class:`~.pipeline.Pipeline`
and hands the fresh rows to the :class:`~.dispatch.Dispatcher`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..bus.envelope import decode_envelope
from ..bus.transport import MalformedFrames, SubscriberTransport
from ..config import Config
from ..errors import NotifierError, SignatureError
from .dispatch import Dispatcher
from .pipeline import Pipeline

log = logging.getLogger(__name__)

BATCH_MAX = 500
NOTHING = object()  # what _receive returns when nothing arrived


class IngestMetrics(Protocol):
    """What the ingest counts (see :class:`notifier.service.metrics.Metrics`)."""

    received: Any
    rejected: Any
    matched: Any
    notifications: Any
    last_message: Any


class Validates(Protocol):
    def validate(self, envelope: dict[str, Any]) -> None: ...


class Ingest:
    """Receives from ``subscriber`` until stopped; see the module docstring.

    ``on_recorded`` is called after every batch that recorded something (the
    live streams look for new rows then).
    """

    def __init__(self, config: Config, subscriber: SubscriberTransport, pipeline: Pipeline,
                 dispatcher: Dispatcher, metrics: IngestMetrics, *,
                 validator: Validates | None = None,
                 on_recorded: Callable[[], None] | None = None):
        self.config = config
        self.subscriber = subscriber
        self.pipeline = pipeline
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.validator = validator
        self.on_recorded = on_recorded or (lambda: None)

    def run(self, stopping: threading.Event) -> None:
        """Take and process batches until ``stopping`` is set, then what is already received."""
        batch: list[dict[str, Any]] = []
        while True:
            stop = stopping.is_set()
            # When stopping, take what the socket already holds, then finish.
            got = self._receive(0 if (batch or stop) else 0.5)
            if got is not NOTHING:
                if got is not None:
                    batch.append(got)
                if len(batch) < BATCH_MAX:
                    continue
            if batch:
                self.process(batch)
                batch = []
            elif stop:
                return

    def _receive(self, timeout: float) -> Any:
        """The next envelope; None for one rejected; NOTHING when ``timeout`` passes first."""
        try:
            frames = self.subscriber.recv(timeout)
        except MalformedFrames as exc:
            self._reject("frames", str(exc))
            return None
        if frames is None:
            return NOTHING
        self.metrics.received.inc()
        self.metrics.last_message.set(time.time())
        topic, payload = frames
        if len(payload) > self.config.max_message_bytes:
            self._reject("too-big", f"{len(payload)} bytes on {topic[:200]!r}, "
                                    f"over max_message_bytes {self.config.max_message_bytes}")
            return None
        try:
            envelope = decode_envelope(topic, payload)
        except ValueError as exc:
            self._reject("json", f"on {topic[:200]!r}: {exc}")
            return None
        if self.validator is not None:
            try:
                self.validator.validate(envelope)
            except SignatureError as exc:
                self._reject("signature", f"{envelope.get('msg_id')}: {exc}")
                return None
        return envelope

    def _reject(self, reason: str, detail: str) -> None:
        self.metrics.rejected.labels(reason=reason).inc()
        log.warning("rejected a message (%s): %s", reason, detail)

    def process(self, batch: list[dict[str, Any]]) -> None:
        """Run ``batch`` through the pipeline and hand the fresh rows over."""
        try:
            result = self.pipeline.process(batch, self.dispatcher.room())
        except NotifierError as exc:
            # The database is down: nothing was recorded. Say so loudly; the
            # batch cannot be kept without a database, and the bus does not replay.
            log.error("could not record %d messages: %s", len(batch), exc)
            self.metrics.rejected.labels(reason="storage").inc(len(batch))
            return
        self.metrics.matched.inc(result.matched)
        self.dispatcher.hand_off(result)
        for destination, n in result.per_destination.items():
            self.metrics.notifications.labels(destination=destination).inc(n)
        self.on_recorded()
