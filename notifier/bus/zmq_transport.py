"""ZeroMQ transport, wire-compatible with fedmsg.

The publisher is an XPUB socket. XPUB hands us every subscription its peers
make, so instead of sleeping and hoping (fedmsg sleeps 0.5 s, then sends into
the void if nobody listens) we send only once someone has subscribed to the
topic, and raise :class:`~notifier.errors.NoRelayError` naming the address if
nobody does within the timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import zmq
from zmq.utils.monitor import parse_monitor_message

from ..errors import NoRelayError, PublishError, TransportError
from .transport import MalformedFrames, PublisherTransport, SubscriberTransport, Transport

log = logging.getLogger(__name__)


class ZmqPublisher(PublisherTransport):
    """An XPUB socket that connects to a relay, or binds (fedmsg's passive mode)."""

    def __init__(self, address: str, *, bind: bool, timeout: float, high_water_mark: int):
        self.address = address
        self.bind = bind
        self.timeout = timeout
        self._ctx = zmq.Context(io_threads=1)
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, int(timeout * 1000))
        self._sock.setsockopt(zmq.SNDHWM, high_water_mark)
        if high_water_mark:
            # With a bounded queue, block (then fail loudly) rather than drop.
            self._sock.setsockopt(zmq.XPUB_NODROP, 1)
            self._sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
        try:
            (self._sock.bind if bind else self._sock.connect)(address)
        except zmq.ZMQError as exc:
            self.close()
            verb = "bind" if bind else "connect to"
            raise TransportError(f"cannot {verb} {address}: {exc}") from exc
        self._prefixes: set[bytes] = set()
        self._everything = False

    def _take_subscriptions(self, wait_ms: int) -> None:
        sock = self._sock
        while sock.poll(wait_ms, zmq.POLLIN):
            frame = sock.recv()
            wait_ms = 0
            if frame[:1] == b"\x01":
                self._prefixes.add(frame[1:])
            elif frame[:1] == b"\x00":
                self._prefixes.discard(frame[1:])
            self._everything = b"" in self._prefixes

    def _subscribed(self, topic: bytes) -> bool:
        return self._everything or any(topic.startswith(p) for p in self._prefixes)

    def wait_for_subscriber(self, topic: bytes = b"") -> None:
        """Block until someone subscribed to ``topic``, or raise :class:`NoRelayError`."""
        deadline = time.monotonic() + self.timeout
        self._take_subscriptions(0)
        while not self._subscribed(topic):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                who = "subscriber connected to" if self.bind else "relay answered at"
                raise NoRelayError(
                    f"no {who} {self.address} within {self.timeout:g} s; "
                    f"is 'notifier serve' running? (it runs the relay and stores and "
                    f"delivers what arrives; 'notifier relay' alone only forwards)"
                    if not self.bind else
                    f"no {who} {self.address} within {self.timeout:g} s")
            self._take_subscriptions(max(1, int(remaining * 1000)))

    def send(self, topic: bytes, envelope: bytes) -> None:
        if not self._everything and not self._subscribed(topic):
            self.wait_for_subscriber(topic)
        try:
            self._sock.send_multipart((topic, envelope))
        except zmq.Again as exc:
            raise PublishError(f"{self.address}: send queue stayed full for "
                               f"{self.timeout:g} s") from exc
        except zmq.ZMQError as exc:
            raise PublishError(f"{self.address}: {exc}") from exc

    def close(self) -> None:
        if not self._sock.closed:
            self._sock.close()
        self._ctx.term()


class ZmqSubscriber(SubscriberTransport):
    """A SUB socket connected to every endpoint.

    With ``max_message_size``, ZeroMQ drops the connection to a peer that
    sends a bigger frame, before buffering it, and does not connect again by
    itself; :meth:`recv` then connects again, so that such a frame costs the
    messages in flight on that connection, not the subscription.
    """

    def __init__(self, addresses: Sequence[str], topics: Sequence[str], high_water_mark: int,
                 max_message_size: int = 0):
        self._ctx = zmq.Context(io_threads=1)
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, high_water_mark)
        self._max_message_size = max_message_size
        self._monitor: zmq.Socket[bytes] | None = None
        if max_message_size > 0:
            self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_size)
            self._monitor = self._sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._sock.setsockopt(zmq.LINGER, 0)
        for topic in topics or ("",):
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
        for address in addresses:
            try:
                self._sock.connect(address)
            except zmq.ZMQError as exc:
                self.close()
                raise TransportError(f"cannot connect to {address}: {exc}") from exc

    def _reconnect(self) -> None:
        """Connect again to every endpoint that dropped us since the last look."""
        assert self._monitor is not None
        while self._monitor.poll(0, zmq.POLLIN):
            event = parse_monitor_message(self._monitor.recv_multipart())
            endpoint = event["endpoint"].decode("utf-8", "replace")
            log.warning("the connection to %s was dropped (a frame over %d bytes, or the "
                        "peer went away); connecting again", endpoint, self._max_message_size)
            try:
                self._sock.disconnect(endpoint)
            except zmq.ZMQError:
                pass  # already forgotten
            try:
                self._sock.connect(endpoint)
            except zmq.ZMQError as exc:
                raise TransportError(f"cannot connect again to {endpoint}: {exc}") from exc

    def recv(self, timeout: float | None = None) -> tuple[bytes, bytes] | None:
        if self._monitor is not None:
            self._reconnect()
        wait = -1 if timeout is None else max(0, int(timeout * 1000))
        if not self._sock.poll(wait, zmq.POLLIN):
            return None
        frames = self._sock.recv_multipart()
        if len(frames) != 2:
            raise MalformedFrames(frames)
        return frames[0], frames[1]

    def close(self) -> None:
        if self._monitor is not None and not self._monitor.closed:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
        if not self._sock.closed:
            self._sock.close()
        self._ctx.term()


class ZmqTransport(Transport):
    """ZeroMQ: ``tcp://`` and ``ipc://``."""

    schemes = ("tcp", "ipc")

    def publisher(self, address: str, *, bind: bool, timeout: float,
                  high_water_mark: int) -> ZmqPublisher:
        return ZmqPublisher(address, bind=bind, timeout=timeout,
                            high_water_mark=high_water_mark)

    def subscriber(self, addresses: Sequence[str], topics: Sequence[str],
                   high_water_mark: int, max_message_size: int = 0) -> ZmqSubscriber:
        return ZmqSubscriber(addresses, topics, high_water_mark, max_message_size)
