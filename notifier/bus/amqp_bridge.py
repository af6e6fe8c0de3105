"""``notifier bridge``: carries messages between a ZeroMQ bus and an AMQP broker.

On the ZeroMQ side a message is a fedmsg envelope; on the AMQP side it is a
fedora-messaging message (:mod:`.amqp_message`). Either direction, or both:

* **ZeroMQ -> AMQP** (:class:`ZmqToAmqp`): the envelope's ``msg`` becomes the
  body, its ``msg_id`` the ``message_id``, its topic the routing key. The
  next message is taken only once the broker confirmed this one; while it
  cannot be published, it is tried again with backoff, never dropped.
* **AMQP -> ZeroMQ** (:class:`AmqpToZmq`): from a durable queue of its own,
  each message is wrapped in a fedmsg envelope (``msg_id`` = the message id,
  ``username`` = :data:`BRIDGE_USER`, the AMQP headers kept in ``headers``),
  handed to the ZeroMQ relay, and only then acked. A body that is not JSON
  is dead-lettered.

Nothing loops: what the bridge publishes on AMQP carries the header
:data:`BRIDGE_HEADER`, and what it publishes on ZeroMQ the username
:data:`BRIDGE_USER`; each direction lets pass what the other one sent,
and also every ``msg_id`` the other direction carried lately.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from ..backoff import backoff_delay
from ..config import AmqpBinding, AmqpConfig
from ..errors import NotifierError
from .amqp_message import Describe
from .envelope import canonical_json, message_id
from .transport import PublisherTransport, SubscriberTransport

log = logging.getLogger(__name__)

#: the ``username`` of the envelopes the bridge publishes on ZeroMQ (as fedmsg-migration-tools)
BRIDGE_USER = "amqp-bridge"
#: the AMQP header on what the bridge publishes on AMQP
BRIDGE_HEADER = "notifier_bridge"
#: ids remembered per direction, to let pass what the other direction carried
RECENT = 10000


class RecentIds:
    """A bounded set of message ids, the oldest forgotten first. Thread-safe."""

    def __init__(self, size: int = RECENT):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, msg_id: str) -> None:
        with self._lock:
            self._ids[msg_id] = None
            self._ids.move_to_end(msg_id)
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def __contains__(self, msg_id: object) -> bool:
        with self._lock:
            return msg_id in self._ids


def bridge_settings(settings: AmqpConfig, queue: str, routing_keys: Sequence[str],
                    exchange: str = "amq.topic") -> AmqpConfig:
    """``[bus.amqp]`` for the bridge: its own queue and dead letters; no ``mandatory``.

    A bridge forwards the whole bus, most of whose topics nobody consumes:
    the broker's confirmation is the end of its responsibility.
    """
    return dataclasses.replace(
        settings, queue=queue, dead_letter_queue=f"{queue}.dead",
        dead_letter_exchange=f"{queue}.dead", mandatory=False,
        bindings=(AmqpBinding(exchange=exchange, routing_keys=tuple(routing_keys)),))


class _Direction:
    name = "bridge"

    def __init__(self, *, retry_base: float = 0.5, retry_cap: float = 30.0):
        self.carried = 0
        self.skipped = 0
        self.retry_base, self.retry_cap = retry_base, retry_cap

    publisher: PublisherTransport

    def _send(self, what: str, topic: bytes, payload: bytes, stopping: threading.Event) -> bool:
        """Publish until it succeeds (True) or ``stopping`` is set (False)."""
        for attempt in itertools.count():
            try:
                self.publisher.send(topic, payload)
                return True
            except NotifierError as exc:
                delay = backoff_delay(min(attempt, 30), self.retry_base, self.retry_cap)
                log.error("%s: %s failed (%s); trying again in %.1f s", self.name, what, exc,
                          delay)
                if stopping.wait(delay):
                    return False
        raise AssertionError("unreachable")


class ZmqToAmqp(_Direction):
    """Carries fedmsg envelopes from a ZeroMQ subscriber to an AMQP publisher."""

    name = "zeromq->amqp"

    def __init__(self, subscriber: SubscriberTransport, publisher: PublisherTransport,
                 *, from_amqp: RecentIds, to_amqp: RecentIds,
                 describe: Describe | None = None, **kw: Any):
        super().__init__(**kw)
        self.subscriber, self.publisher = subscriber, publisher
        self.from_amqp, self.to_amqp = from_amqp, to_amqp
        if describe is not None:
            publisher.describe_with(describe)
        setter = getattr(publisher, "mark_with", None)
        if setter is not None:
            setter({BRIDGE_HEADER: "zeromq"})

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            frames = self.subscriber.recv(0.5)
            if frames is None:
                self._confirm()
                continue
            topic, payload = frames
            try:
                envelope = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                log.warning("%s: skipped a message on %r that is not JSON: %s", self.name,
                            topic[:200], exc)
                continue
            if not isinstance(envelope, dict) or "msg" not in envelope:
                log.warning("%s: skipped a message on %r that is not a fedmsg envelope",
                            self.name, topic[:200])
                continue
            msg_id = envelope.get("msg_id")
            if envelope.get("username") == BRIDGE_USER or msg_id in self.from_amqp:
                self.skipped += 1  # it came from AMQP through us: never back
                continue
            if not isinstance(msg_id, str) or not msg_id:
                envelope["msg_id"] = msg_id = message_id(envelope)
                payload = canonical_json(envelope).encode("ascii")
            if not self._send(f"publishing {msg_id}", topic, payload, stopping):
                log.error("%s: stopped with %s not confirmed", self.name, msg_id)
                return
            self.to_amqp.add(msg_id)
            self.carried += 1


    def _confirm(self) -> None:
        """While the bus is quiet, wait for the broker to confirm what was published.

        A message the broker refused is an error in the log, never a silent loss.
        """
        try:
            self.publisher.flush()
        except NotifierError as exc:
            log.error("%s: %s", self.name, exc)


class AmqpToZmq(_Direction):
    """Carries fedora-messaging messages from an AMQP queue to a ZeroMQ publisher."""

    name = "amqp->zeromq"

    def __init__(self, subscriber: SubscriberTransport, publisher: PublisherTransport,
                 *, from_amqp: RecentIds, to_amqp: RecentIds, **kw: Any):
        super().__init__(**kw)
        self.subscriber, self.publisher = subscriber, publisher
        self.from_amqp, self.to_amqp = from_amqp, to_amqp
        self._counter = itertools.count(1)

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            frames = self.subscriber.recv(0.5)
            if frames is None:
                continue
            token = self.subscriber.last_token()
            topic, payload = frames
            try:
                received = orjson.loads(payload)
                if not isinstance(received, dict) or "msg" not in received:
                    raise ValueError("the body is not JSON")
            except ValueError as exc:  # orjson's error is one
                log.warning("%s: dead-lettered a message on %r: %s", self.name, topic[:200], exc)
                self.subscriber.reject([token])
                continue
            headers = received.get("headers") or {}
            msg_id = received.get("msg_id")
            if headers.get(BRIDGE_HEADER) or msg_id in self.to_amqp:
                self.skipped += 1  # it came from ZeroMQ through us: never back
                self.subscriber.commit([token])
                continue
            envelope = {"i": next(self._counter), "msg": received["msg"],
                        "msg_id": msg_id or message_id(received),
                        "timestamp": received.get("timestamp") or int(time.time()),
                        "topic": received["topic"], "username": BRIDGE_USER}
            if headers:
                envelope["headers"] = headers
            out = canonical_json(envelope).encode("ascii")
            if not self._send(f"handing {envelope['msg_id']} to ZeroMQ", topic, out, stopping):
                return  # not acked: the broker delivers it again
            self.from_amqp.add(envelope["msg_id"])
            self.subscriber.commit([token])  # handed over: now the broker may forget it
            self.carried += 1
