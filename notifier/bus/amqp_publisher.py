"""Publishing on AMQP with pipelined publisher confirms.

:meth:`AmqpPublisher.send` writes the message and returns without waiting for
the broker's confirmation, as long as fewer than ``[bus.amqp]
confirm_window`` messages await theirs; then it waits. Waiting for each
confirmation in turn (a round trip and the broker's write, about half a
millisecond) would cap one publisher near 2,000 messages/s; pipelined, the
broker confirms many at once (``multiple``).

Nothing is lost silently. Every message is held until the broker confirms
it. When the connection drops, the held messages are sent again, in order
and with the same ``message_id``, on a new one (a consumer that saw one
twice stores it once). A message the broker refuses (``basic.nack``), or
returns because no queue is bound for it (``mandatory``), or that is still
unconfirmed ``timeout`` seconds into a wait, is an error:
:class:`~notifier.errors.PublishError`, naming it, raised by the next
:meth:`~AmqpPublisher.send` (before it sends anything), by
:meth:`~AmqpPublisher.flush`, or by :meth:`~AmqpPublisher.close`. With
``confirm_window = 1`` each send waits for its own confirmation and raises
for its own message.

pika's asynchronous connection is driven from the caller's thread (its
I/O loop is polled only inside these methods), so no thread runs behind the
caller's back; like every transport, it is not thread-safe.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import IOLoop, SelectConnection

from ..backoff import backoff_delay
from ..config import AmqpConfig
from ..errors import PublishError
from .amqp_connect import CONNECTION_ERRORS, parameters, shown
from .amqp_message import Describe, publication
from .transport import PublisherTransport

log = logging.getLogger(__name__)

#: failures named one by one in an error; the rest are counted
NAMED = 5
#: seconds without a look at the socket after which a send looks before it writes
IDLE = 1.0


class _Link:
    """One connection and its channel in confirm mode, polled from the caller's thread."""

    def __init__(self, params: pika.URLParameters, timeout: float):
        self.ioloop = IOLoop()
        self.ioloop.activate_poller()  # polled here, never started
        self.channel: Any = None
        self.error: BaseException | None = None
        self.confirms: list[tuple[int, bool, bool]] = []  # (tag, multiple, acked)
        self.returned: set[str] = set()
        self.next_tag = 1
        self.connection = SelectConnection(
            params, on_open_callback=self._opened, on_open_error_callback=self._failed,
            on_close_callback=self._failed, custom_ioloop=self.ioloop)
        deadline = time.monotonic() + timeout
        while self.channel is None or not self.channel.is_open or not self._selected:
            if self.error is not None:
                raise _cause(self.error)
            if time.monotonic() >= deadline:
                self.close()
                raise TimeoutError("no answer from the broker")
            self.pump(deadline - time.monotonic())

    _selected = False

    def _opened(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._channel_opened)

    def _channel_opened(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._failed)
        channel.add_on_return_callback(self._returned)
        channel.confirm_delivery(self._confirmed, callback=self._select_ok)

    def _select_ok(self, frame: Any) -> None:
        self._selected = True

    def _failed(self, _source: Any, error: BaseException) -> None:
        if self.error is None:
            self.error = error if isinstance(error, BaseException) else ConnectionError(error)

    def _confirmed(self, frame: Any) -> None:
        method = frame.method
        self.confirms.append((method.delivery_tag, bool(method.multiple),
                              isinstance(method, pika.spec.Basic.Ack)))

    def _returned(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        if properties.message_id:
            self.returned.add(properties.message_id)

    @property
    def usable(self) -> bool:
        return self.error is None and self.channel is not None and self.channel.is_open

    def pump(self, timeout: float) -> None:
        """Handle what the broker sent and write what is queued, waiting up to ``timeout`` s."""
        timer = self.ioloop.call_later(max(0.0, timeout), _nothing)
        try:
            self.ioloop.poll()
            self.ioloop.process_timeouts()
        finally:
            self.ioloop.remove_timeout(timer)

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: Any,
                mandatory: bool) -> int:
        self.channel.basic_publish(exchange, routing_key, body, properties, mandatory=mandatory)
        tag, self.next_tag = self.next_tag, self.next_tag + 1
        return tag

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
                deadline = time.monotonic() + 2.0
                while not self.connection.is_closed and time.monotonic() < deadline:
                    self.pump(0.1)
        except CONNECTION_ERRORS:
            pass
        finally:
            self.ioloop.close()


def _nothing() -> None:
    return None


def _cause(error: BaseException) -> BaseException:
    """What made pika's connection workflow fail (a refused TLS certificate, say)."""
    attempts = getattr(error, "exceptions", None)
    if attempts:
        error = attempts[-1]
    inner = getattr(error, "exception", None)
    return inner if isinstance(inner, BaseException) else error


class AmqpPublisher(PublisherTransport):
    """Publishes on ``[bus.amqp] publish_exchange``; see the module docstring."""

    def __init__(self, address: str, settings: AmqpConfig, timeout: float):
        self.address = address
        self.settings = settings
        self.timeout = timeout
        self.window = max(1, settings.confirm_window)
        self._params = parameters(address, settings, timeout)
        self._describe: Describe | None = None
        self._marks: dict[str, Any] = {}
        self._link: _Link | None = None
        # delivery tag -> the message, in the order sent, until confirmed
        self._held: OrderedDict[int, tuple[str, str, bytes, Any]] = OrderedDict()
        self._failures: list[str] = []
        self._pumped = time.monotonic()
        self._connect()

    def describe_with(self, describe: Describe) -> None:
        self._describe = describe

    def mark_with(self, headers: dict[str, Any]) -> None:
        """Add ``headers`` to every message (the bridge marks what it carried)."""
        self._marks = dict(headers)

    @property
    def unconfirmed(self) -> int:
        """Messages sent and not yet confirmed."""
        return len(self._held)

    # -- the connection ----------------------------------------------------------

    def _connect(self) -> None:
        """Connect (again), within the timeout, and send again what was not confirmed."""
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            try:
                self._link = _Link(self._params, max(0.1, deadline - time.monotonic()))
                break
            except (*CONNECTION_ERRORS, pika.exceptions.AMQPError, TimeoutError) as exc:
                self._link = None
                delay = backoff_delay(attempt, self.settings.reconnect_base,
                                      self.settings.reconnect_cap)
                if time.monotonic() + delay > deadline:
                    raise PublishError(f"cannot connect to the AMQP broker at "
                                       f"{shown(self.address)} within {self.timeout:g} s: "
                                       f"{exc!r}") from exc
                time.sleep(delay)
                attempt += 1
        held, self._held = self._held, OrderedDict()
        if held:
            log.warning("%d messages sent to %s were not confirmed before the connection was "
                        "lost; sending them again", len(held), shown(self.address))
        for message_id, routing_key, body, properties in held.values():
            self._write(message_id, routing_key, body, properties)

    def _lost(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def _write(self, message_id: str, routing_key: str, body: bytes, properties: Any) -> None:
        assert self._link is not None
        tag = self._link.publish(self.settings.publish_exchange, routing_key, body, properties,
                                 self.settings.mandatory)
        self._held[tag] = (message_id, routing_key, body, properties)

    # -- confirmations -----------------------------------------------------------

    def _settle(self) -> None:
        """Take in the confirmations received; a lost connection is made again."""
        link = self._link
        if link is None:
            self._connect()
            return
        confirms, link.confirms = link.confirms, []
        for tag, multiple, acked in confirms:
            tags = [t for t in self._held if t <= tag] if multiple else [tag]
            for t in tags:
                held = self._held.pop(t, None)
                if held is None:
                    continue
                message_id, routing_key = held[0], held[1]
                if not acked:
                    self._failures.append(f"the broker refused message {message_id} "
                                          f"({routing_key})")
                elif message_id in link.returned:
                    link.returned.discard(message_id)
                    self._failures.append(
                        f"no queue is bound for {routing_key!r} on exchange "
                        f"{self.settings.publish_exchange!r}; the broker returned message "
                        f"{message_id}")
        if not link.usable:
            self._lost()
            self._connect()

    def _raise_failures(self) -> None:
        if not self._failures:
            return
        failures, self._failures = self._failures, []
        more = f" (and {len(failures) - NAMED} more)" if len(failures) > NAMED else ""
        raise PublishError(f"{shown(self.address)}: " + "; ".join(failures[:NAMED]) + more)

    def _wait(self, most: int) -> None:
        """Wait until at most ``most`` messages are unconfirmed, or the timeout passes."""
        deadline = time.monotonic() + self.timeout
        self._settle()
        while len(self._held) > most:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ids = [held[0] for held in list(self._held.values())[:NAMED]]
                self._failures.append(f"{len(self._held)} messages were not confirmed within "
                                      f"{self.timeout:g} s (the first: {', '.join(ids)})")
                self._held.clear()
                self._lost()
                break
            assert self._link is not None
            try:
                self._link.pump(remaining)
            except CONNECTION_ERRORS as exc:
                self._link.error = self._link.error or exc
            self._settle()

    # -- the interface -----------------------------------------------------------

    def send(self, topic: bytes, envelope: bytes) -> None:
        message = publication(topic, envelope, schema=self.settings.schema,
                              describe=self._describe)
        if self._marks:
            message.headers.update(self._marks)
        properties = pika.BasicProperties(**message.properties)
        # After a quiet spell, first read what the broker said meanwhile: a connection it
        # closed (missed heartbeats) is made again before this message is written.
        if self._link is not None and time.monotonic() - self._pumped > IDLE:
            self._pump()
        # Earlier messages refused (confirmations read by the calls before) are reported
        # before this one goes out.
        self._settle()
        self._raise_failures()
        try:
            self._write(message.message_id, message.routing_key, message.body, properties)
        except (*CONNECTION_ERRORS, pika.exceptions.AMQPError):
            # Not written: it goes again, with what else was held, on a new connection.
            self._lost()
            self._held[-1] = (message.message_id, message.routing_key, message.body, properties)
            self._connect()
        if len(self._held) >= self.window:
            self._wait(self.window - 1)
            self._raise_failures()
            return
        # Out on the socket now (a caller may publish nothing more for a long while), and
        # the confirmations that came meanwhile read.
        self._pump()

    def _pump(self) -> None:
        assert self._link is not None
        try:
            self._link.pump(0)
        except CONNECTION_ERRORS as exc:
            self._link.error = self._link.error or exc
        self._pumped = time.monotonic()

    def flush(self) -> None:
        """Wait for every message sent to be confirmed; PublishError names those that were not."""
        if self._held or self._link is not None:
            self._wait(0)
        self._raise_failures()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._lost()
