"""AMQP transport (RabbitMQ), wire-compatible with fedora-messaging 3.x.

Chosen by the address's scheme, ``amqp://`` or ``amqps://`` (a pika URL,
``amqp://user:password@host:port/vhost``). The message format is in
:mod:`.amqp_message`; the settings in ``[bus.amqp]``.

Publishing (:class:`~.amqp_publisher.AmqpPublisher`) uses publisher
confirms, pipelined: a message the broker refuses, that no queue is bound for
(``mandatory``), or that stays unconfirmed, is a
:class:`~notifier.errors.PublishError`. Nothing is lost silently.

Consuming (:class:`AmqpSubscriber`): with ``durable`` (``notifier serve``),
a durable queue named ``[bus.amqp] queue`` with the configured bindings,
dead-lettered into ``dead_letter_exchange``; otherwise (``notifier-tail``)
a private queue that goes away with the connection. Messages are acked
only when the caller says they are recorded (:meth:`AmqpSubscriber.commit`),
and dead-lettered, never requeued, when it says they are bad
(:meth:`AmqpSubscriber.reject`). A lost connection is made again, with
backoff, for as long as it takes, declaring the queue and bindings again;
messages not acked on the lost one come back from the broker.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import pika
import pika.exceptions

from ..backoff import backoff_delay
from ..config import AmqpConfig
from ..errors import TransportError
from .amqp_connect import CONNECTION_ERRORS, parameters, shown
from .amqp_message import envelope_frames
from .amqp_publisher import AmqpPublisher
from .transport import SubscriberTransport, Transport

log = logging.getLogger(__name__)

class AmqpSubscriber(SubscriberTransport):
    """Consumes from a queue; see the module docstring."""

    def __init__(self, addresses: Sequence[str], topics: Sequence[str], settings: AmqpConfig,
                 *, durable: bool, timeout: float = 10.0):
        if not addresses:
            raise TransportError("no AMQP broker to consume from")
        self.addresses = list(addresses)
        self.settings = settings
        self.durable = durable
        self.topics = list(topics or ("",))
        self.timeout = timeout
        self._params = [parameters(a, settings, timeout, "consumer" if durable else "tail")
                        for a in self.addresses]
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._queue = settings.queue if durable else ""
        self._generation = 0
        self._attempt = 0
        self._retry_at = 0.0
        self._pending: deque[tuple[str, bytes, Any, int]] = deque()
        #: delivery tags handed to the caller and not yet settled, on this connection
        self._handed: set[int] = set()
        self._last: tuple[int, int] | None = None
        self._down_since: float | None = None
        self._down_error = ""
        self._connect()  # the first time, a mistake (bad queue arguments) stops the caller

    # -- connecting ------------------------------------------------------------

    def _connect(self) -> None:
        params = self._params[self._attempt % len(self._params)]
        address = shown(self.addresses[self._attempt % len(self.addresses)])
        try:
            connection = pika.BlockingConnection(params)
        except CONNECTION_ERRORS as exc:
            raise TransportError(f"cannot connect to the AMQP broker at {address}: "
                                 f"{exc!r}") from exc
        try:
            channel = connection.channel()
            self._declare(channel)
        except pika.exceptions.ChannelClosedByBroker as exc:
            connection.close()
            raise TransportError(f"{address}: the broker refused the queue {self._queue!r} "
                                 f"or its bindings: {exc.reply_text}") from exc
        except CONNECTION_ERRORS as exc:
            connection.close() if connection.is_open else None
            raise TransportError(f"{address}: {exc!r}") from exc
        self._connection, self._channel = connection, channel
        self._generation += 1
        self._pending.clear()
        self._handed.clear()

    def _declare(self, channel: Any) -> None:
        settings = self.settings
        channel.basic_qos(prefetch_count=settings.prefetch_count)
        if self.durable:
            channel.exchange_declare(settings.dead_letter_exchange, "fanout", durable=True)
            channel.queue_declare(settings.dead_letter_queue, durable=True)
            channel.queue_bind(settings.dead_letter_queue, settings.dead_letter_exchange)
            channel.queue_declare(self._queue, durable=True, arguments={
                "x-dead-letter-exchange": settings.dead_letter_exchange})
            bindings = [(b.exchange, list(b.routing_keys)) for b in settings.bindings]
        else:
            self._queue = channel.queue_declare("", exclusive=True,
                                                auto_delete=True).method.queue
            bindings = [(settings.bindings[0].exchange if settings.bindings else "amq.topic",
                         [key for t in self.topics for key in routing_keys(t)])]
        for exchange, keys in bindings:
            if not exchange.startswith("amq."):  # the amq.* exchanges always exist
                channel.exchange_declare(exchange, "topic", durable=True)
            for key in keys:
                channel.queue_bind(self._queue, exchange, routing_key=key)
        # A private queue (notifier-tail) is a view of the bus: nobody commits, nothing is held.
        channel.basic_consume(self._queue, self._on_message, auto_ack=not self.durable)

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._pending.append((method.routing_key, body, properties, method.delivery_tag))

    def _lost(self, exc: BaseException) -> None:
        log.error("lost the AMQP connection (%r); messages not yet acked come back from "
                  "the broker; connecting again", exc)
        connection, self._connection, self._channel = self._connection, None, None
        self._pending.clear()
        self._handed.clear()
        self._down_since, self._down_error = time.monotonic(), repr(exc)
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass

    def _reconnect(self, timeout: float | None) -> bool:
        """Try to connect again, within ``timeout``; False (logged) while it fails."""
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            if timeout is not None and wait > timeout:
                time.sleep(max(0.0, timeout))
                return False
            time.sleep(wait)
        try:
            self._connect()
        except TransportError as exc:
            self._down_error = str(exc)
            delay = backoff_delay(self._attempt, self.settings.reconnect_base,
                                  self.settings.reconnect_cap)
            self._attempt += 1
            self._retry_at = time.monotonic() + delay
            log.error("%s; trying again in %.1f s", exc, delay)
            return False
        log.info("connected again to the AMQP broker; consuming from %r", self._queue)
        self._attempt = 0
        self._down_since = None
        return True

    # -- receiving -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is up now."""
        return self._channel is not None and self._channel.is_open

    def recv(self, timeout: float | None = None) -> tuple[bytes, bytes] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self._channel is None:
                if not self._reconnect(remaining):
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
                    continue
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                assert self._connection is not None
                self._connection.process_data_events(
                    time_limit=1.0 if remaining is None else remaining)
            except CONNECTION_ERRORS as exc:
                self._lost(exc)
                continue
            if not self._pending and deadline is not None and time.monotonic() >= deadline:
                return None
        routing_key, body, properties, tag = self._pending.popleft()
        self._last = (self._generation, tag) if self.durable else None
        if self.durable:
            self._handed.add(tag)
        return envelope_frames(routing_key, body, properties.message_id, properties.headers,
                               properties.timestamp)

    def trouble(self) -> str | None:
        since = self._down_since
        if since is None:
            return None
        return (f"not connected to the AMQP broker for {time.monotonic() - since:.0f} s "
                f"(connecting again with backoff): {self._down_error}")

    def last_token(self) -> tuple[int, int] | None:
        return self._last

    def commit(self, tokens: Iterable[Any]) -> None:
        self._settle(tokens, ack=True)

    def reject(self, tokens: Iterable[Any]) -> None:
        self._settle(tokens, ack=False)

    def _settle(self, tokens: Iterable[Any], *, ack: bool) -> None:
        tags = sorted(tag for generation, tag in (t for t in tokens if t is not None)
                      if generation == self._generation)
        # Tokens of a lost connection are settled by the broker: it delivers them again.
        if not tags or self._channel is None:
            return
        handed = self._handed
        handed.difference_update(tags)
        try:
            if ack and not any(tag < tags[-1] for tag in handed):
                # Every message handed out up to the last is settled by now: one frame
                # acks them all (those still in _pending came later, with higher tags).
                self._channel.basic_ack(tags[-1], multiple=True)
                return
            for tag in tags:
                if ack:
                    self._channel.basic_ack(tag)
                else:
                    self._channel.basic_nack(tag, requeue=False)  # dead-lettered
        except CONNECTION_ERRORS as exc:
            self._lost(exc)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass


def routing_keys(prefix: str) -> list[str]:
    """Binding keys for a ZeroMQ-style topic prefix (``""`` is everything)."""
    prefix = prefix.strip()
    if not prefix:
        return ["#"]
    if prefix.endswith("."):
        return [prefix + "#"]
    return [prefix, prefix + ".#"]


class AmqpTransport(Transport):
    """AMQP 0-9-1: ``amqp://`` and ``amqps://``."""

    schemes = ("amqp", "amqps")

    def __init__(self, settings: AmqpConfig | None = None):
        self.settings = settings or AmqpConfig()

    def publisher(self, address: str, *, bind: bool, timeout: float,
                  high_water_mark: int) -> AmqpPublisher:
        if bind:
            raise TransportError(f"{shown(address)}: an AMQP publisher connects to a broker; "
                                 "it cannot bind (unset [bus] publish_endpoint)")
        return AmqpPublisher(address, self.settings, timeout)

    def subscriber(self, addresses: Sequence[str], topics: Sequence[str],
                   high_water_mark: int, max_message_size: int = 0, *,
                   durable: bool = False) -> AmqpSubscriber:
        return AmqpSubscriber(addresses, topics, self.settings, durable=durable)
