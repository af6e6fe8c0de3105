"""The ingest loop: from the bus, through the pipeline, to the dispatcher.

It takes messages off the bus in batches (whatever the socket already holds
when the first one is taken, so a lone message goes through at once),
checks each one at the boundary (:mod:`notifier.bus.checks`), validates its
signature when asked to, runs the batch through the
:class:`~.pipeline.Pipeline` and hands the fresh rows to the
:class:`~.dispatch.Dispatcher`.

Each bad message costs only itself: one that fails a check or a stage is
rejected alone, logged with its ``msg_id`` and the reason, counted in
``notifier_messages_rejected_total{reason}`` and kept, a batch of them at a
time, in the store of rejected messages (``notifier history rejected``).

When the database cannot be used, nothing is rejected or dropped: the batch
is kept and written again with backoff until it goes in or the service
stops, and :meth:`Ingest.stalled` says so for health. :meth:`Ingest.run`
may be called again after it raised; a batch not yet recorded is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..backoff import backoff_delay
from ..bus.checks import Limits, check_received, normalise
from ..bus.transport import MalformedFrames, SubscriberTransport
from ..config import Config
from ..errors import (
    BadMessageError,
    NotifierError,
    SignatureError,
    StorageError,
    StorageUnavailableError,
)
from ..storage.rejected import PAYLOAD_LIMIT, RejectedMessage, RejectedStore
from .dispatch import Dispatcher
from .pipeline import BatchResult, Pipeline

log = logging.getLogger(__name__)

BATCH_MAX = 500
NOTHING = object()  # what _receive returns when nothing arrived
#: seconds a batch may wait to be recorded, or the loop go without turning, before health hears
STALL_AFTER = 30.0
#: backoff between attempts to record a batch while the database cannot be used
RETRY_BASE, RETRY_CAP = 0.5, 15.0
#: rejections logged one by one per second; past that they are counted, then summed up
LOG_PER_SECOND = 20
#: rejected messages held while they cannot be written; past that the oldest go
REJECTIONS_HELD = 2000
#: seconds between attempts to write rejected messages after one failed
REJECTIONS_RETRY = 5.0
#: rejected messages are written at least this often (seconds) while messages keep coming
REJECTIONS_EVERY = 1.0


class IngestMetrics(Protocol):
    """What the ingest counts (see :class:`notifier.service.metrics.Metrics`)."""

    received: Any
    rejected: Any
    matched: Any
    notifications: Any
    last_message: Any
    record_failures: Any


class Validates(Protocol):
    def validate(self, envelope: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Received:
    """A message that passed the checks: its envelope, and what to keep if it is rejected later."""

    envelope: dict[str, Any]
    topic: bytes
    payload: bytes  # the first PAYLOAD_LIMIT bytes
    size: int
    token: Any = None  # the transport's handle for acknowledging it (AMQP), else None


class Ingest:
    """Receives from ``subscriber`` until stopped; see the module docstring.

    ``on_recorded`` is called, from the ingest thread, after every batch that
    recorded notifications (the live streams look for new rows then). ``rejected`` keeps rejected
    messages (default: in the pipeline's database, ``[history] keep_rejected``).
    """

    name = "ingest"

    def __init__(self, config: Config, subscriber: SubscriberTransport, pipeline: Pipeline,
                 dispatcher: Dispatcher, metrics: IngestMetrics, *,
                 validator: Validates | None = None,
                 on_recorded: Callable[[], None] | None = None,
                 rejected: RejectedStore | None = None):
        self.config = config
        self.subscriber = subscriber
        self.pipeline = pipeline
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.validator = validator
        self.on_recorded = on_recorded or (lambda: None)
        self.limits = Limits.from_config(config)
        self.rejected = rejected if rejected is not None else RejectedStore(
            pipeline.outbox.store, config.history.keep_rejected)
        self.stall_after = STALL_AFTER
        self.retry_base, self.retry_cap = RETRY_BASE, RETRY_CAP
        self._batch: list[Received] = []
        self._batch_crashed = False
        self._waiting_since: float | None = None
        self._waiting_error = ""
        self._turned: float | None = None
        self._rejections: list[RejectedMessage] = []
        self._rejections_after = 0.0
        self._rejections_failing = False
        self._rejections_lost = 0
        self._log_second = 0
        self._logged = self._unlogged = 0

    # -- the loop ----------------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        """Take and process batches until ``stopping`` is set, then what is already received."""
        try:
            while True:
                self._turned = time.monotonic()
                stop = stopping.is_set()
                # When stopping, take what the socket already holds, then finish.
                got = NOTHING
                if len(self._batch) < BATCH_MAX:
                    got = self._receive(0 if (self._batch or stop) else 0.5)
                if got is not NOTHING:
                    if got is not None:
                        self._batch.append(got)
                    if len(self._batch) < BATCH_MAX:
                        if self._rejections and (
                                len(self._rejections) >= BATCH_MAX
                                or time.time() - self._rejections[0].at > REJECTIONS_EVERY):
                            self._flush_rejections()
                        continue
                if self._batch and not self._process(stopping):
                    return  # stopping while the database cannot be used
                self._flush_rejections()
                if stop:
                    return
        finally:
            self._turned = None

    def stalled(self) -> str | None:
        """Why the ingest is not draining, for health; None while it is."""
        trouble = self.subscriber.trouble()  # the bus cannot be reached (AMQP)
        if trouble:
            return trouble
        now = time.monotonic()
        since = self._waiting_since
        if since is not None and now - since > self.stall_after:
            return (f"{len(self._batch)} messages have waited {now - since:.0f} s to be "
                    f"recorded: {self._waiting_error}")
        turned = self._turned
        if turned is not None and now - turned > self.stall_after:
            return f"the ingest loop has not turned for {now - turned:.0f} s"
        return None

    # -- receiving ---------------------------------------------------------------

    def _receive(self, timeout: float) -> Any:
        """The next message; None for one rejected; NOTHING when ``timeout`` passes first."""
        try:
            frames = self.subscriber.recv(timeout)
        except MalformedFrames as exc:
            self.subscriber.reject([self.subscriber.last_token()])  # ack hook: dead-letter it
            self.metrics.received.inc()
            parts = exc.frames
            sizes = ", ".join(str(len(f)) for f in parts[:10])
            payload = b"".join(parts[1:])
            self._reject("frames", f"{len(parts)} frames of {sizes} bytes; expected 2 "
                                   f"(topic, envelope)",
                         topic=parts[0][:PAYLOAD_LIMIT] if parts else None,
                         payload=payload[:PAYLOAD_LIMIT], size=len(payload))
            return None
        if frames is None:
            return NOTHING
        self.metrics.received.inc()
        self.metrics.last_message.set(time.time())
        topic, payload = frames
        head, size = payload[:PAYLOAD_LIMIT], len(payload)
        token = self.subscriber.last_token()
        try:
            envelope = check_received(topic, payload, self.limits)
        except BadMessageError as exc:
            self.subscriber.reject([token])  # ack hook: a bad message is dead-lettered
            self._reject(exc.reason, exc.detail, msg_id=exc.msg_id, topic=topic[:PAYLOAD_LIMIT],
                         payload=head, size=size)
            return None
        if self.validator is not None:
            try:
                self.validator.validate(envelope)
            except SignatureError as exc:
                self.subscriber.reject([token])  # ack hook: dead-lettered
                self._reject("signature", str(exc), msg_id=_id_of(envelope),
                             topic=envelope["topic"], payload=head, size=size)
                return None
        # Only now, once a signature saw the envelope as it was sent.
        normalise(envelope)
        return Received(envelope, topic, head, size, token)

    # -- processing --------------------------------------------------------------

    def _process(self, stopping: threading.Event) -> bool:
        """Record the batch, waiting out a database that cannot be used; False if stopped."""
        batch = self._batch
        attempt = 0
        while True:
            try:
                result = self.pipeline.process([r.envelope for r in batch],
                                               self.dispatcher.room())
                break
            except StorageUnavailableError as exc:
                self.metrics.record_failures.inc()
                if self._waiting_since is None:
                    self._waiting_since = time.monotonic()
                    log.error("cannot record %d messages: %s; they are kept and written as "
                              "soon as the database can be used again", len(batch), exc)
                self._waiting_error = str(exc)
                if stopping.wait(backoff_delay(attempt, self.retry_base, self.retry_cap)):
                    log.error("stopping with %d messages not recorded: %s", len(batch), exc)
                    return False
                attempt += 1
            except Exception as exc:  # a bug in recording; the supervisor restarts run()
                if not self._batch_crashed:
                    self._batch_crashed = True  # kept for the next run(), tried once more
                    raise
                log.exception("recording a batch of %d messages failed twice; rejecting it",
                              len(batch))
                result = BatchResult(messages=len(batch))
                self._reject_all(batch, f"{type(exc).__name__}: {exc}")
                # Ack hook: dead-lettered here, so nothing is left for _handle to ack.
                self.subscriber.reject([r.token for r in batch])
                batch = [replace(r, token=None) for r in batch]
                break
        if self._waiting_since is not None:
            log.info("the database can be used again: %d messages kept for %.0f s are recorded",
                     len(batch), time.monotonic() - self._waiting_since)
            self._waiting_since = None
        self._batch = []
        self._batch_crashed = False
        self._handle(batch, result)
        return True

    def _handle(self, batch: list[Received], result: BatchResult) -> None:
        # Ack hook: the batch and its notifications are committed to the database
        # now, so the bus may forget these messages (AMQP acks them; the messages
        # a stage rejected are dead-lettered). Until here nothing was acked: a
        # batch lost with the process comes back from the broker.
        bad = {rejection.index for rejection in result.rejected}
        self.subscriber.reject([batch[i].token for i in sorted(bad)])
        self.subscriber.commit([r.token for i, r in enumerate(batch) if i not in bad])
        for rejection in result.rejected:
            received = batch[rejection.index]
            self._reject(rejection.reason, rejection.detail,
                         msg_id=_id_of(received.envelope), topic=received.envelope["topic"],
                         payload=received.payload, size=received.size, error=rejection.error)
        self.metrics.matched.inc(result.matched)
        self.dispatcher.hand_off(result)
        for destination, n in result.per_destination.items():
            self.metrics.notifications.labels(destination=destination).inc(n)
        for destination, n in result.dead.items():
            self.dispatcher.on_result(destination, "dead", n)
        if result.notifications:
            self.on_recorded()

    def _reject_all(self, batch: list[Received], detail: str) -> None:
        for received in batch:
            self._reject("record", detail, msg_id=_id_of(received.envelope),
                         topic=received.envelope["topic"], payload=received.payload,
                         size=received.size)

    # -- rejecting ---------------------------------------------------------------

    def _reject(self, reason: str, detail: str, *, msg_id: str | None = None,
                topic: str | bytes | None = None, payload: bytes = b"", size: int = 0,
                error: BaseException | None = None) -> None:
        self.metrics.rejected.labels(reason=reason).inc()
        self._rejections.append(RejectedMessage.make(
            time.time(), reason, detail, msg_id=msg_id, topic=topic, payload=payload,
            size=size))
        second = int(time.monotonic())
        if second != self._log_second:
            self._log_unlogged()
            self._log_second, self._logged = second, 0
        if self._logged >= LOG_PER_SECOND:
            self._unlogged += 1
            return
        self._logged += 1
        shown = topic.decode("utf-8", "backslashreplace") if isinstance(topic, bytes) else topic
        log.warning("rejected %s on %.200r (%s): %s", msg_id or "a message", shown, reason,
                    detail, exc_info=None if error is None or isinstance(error, NotifierError)
                    else (type(error), error, error.__traceback__))

    def _log_unlogged(self) -> None:
        if self._unlogged:
            log.warning("%d more messages rejected, not logged one by one; "
                        "'notifier history rejected' lists them", self._unlogged)
            self._unlogged = 0

    def _flush_rejections(self) -> None:
        """Write the rejected messages held, in one transaction; hold them if that fails."""
        self._log_unlogged()
        if not self._rejections or time.monotonic() < self._rejections_after:
            return
        try:
            self.rejected.add(self._rejections)
        except StorageError as exc:
            self._rejections_after = time.monotonic() + REJECTIONS_RETRY
            if not self._rejections_failing:
                self._rejections_failing = True
                log.error("cannot keep %d rejected messages for now: %s",
                          len(self._rejections), exc)
            overflow = len(self._rejections) - REJECTIONS_HELD
            if overflow > 0:
                del self._rejections[:overflow]
                self._rejections_lost += overflow
            return
        if self._rejections_failing:
            self._rejections_failing = False
            lost = f"; {self._rejections_lost} older ones were not kept" \
                if self._rejections_lost else ""
            log.info("rejected messages are kept again%s", lost)
            self._rejections_lost = 0
        self._rejections = []


def _id_of(envelope: dict[str, Any]) -> str | None:
    msg_id = envelope.get("msg_id")
    return msg_id if isinstance(msg_id, str) and msg_id else None
