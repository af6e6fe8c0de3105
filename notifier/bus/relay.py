"""The relay: publishers connect in, subscribers connect out.

It binds a SUB socket on ``[bus] relay_inbound`` (real ``fedmsg-logger``
connects its PUB socket there) and a PUB socket on ``[bus] endpoints[0]``, and
forwards every message, frames unchanged, inside ZeroMQ's own proxy loop.

Addresses are bound exactly as written: ``tcp://127.0.0.1:9941`` listens on
loopback only (fedmsg rewrites it to every interface).
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING

import zmq

from ..errors import TransportError

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)
_ids = itertools.count(1)


class Relay:
    """Forward everything from ``inbound`` to ``outbound``.

    Bind happens in the constructor, so an address in use is reported at once.
    :meth:`run` blocks until :meth:`stop` is called from any thread.

    ``high_water_mark`` bounds the messages queued per peer each way (0: no
    bound); ``max_message_size`` the bytes of one inbound frame (0: no bound):
    a publisher sending a bigger one is disconnected by ZeroMQ.
    """

    def __init__(self, inbound: str, outbound: str, high_water_mark: int = 0,
                 max_message_size: int = 0):
        self.inbound = inbound
        self.outbound = outbound
        self._ctx = zmq.Context(io_threads=1)
        self._control_address = f"inproc://relay-control-{id(self)}-{next(_ids)}"
        self._sub = self._ctx.socket(zmq.SUB)
        self._pub = self._ctx.socket(zmq.PUB)
        self._control = self._ctx.socket(zmq.PAIR)
        self._stopped = threading.Event()  # set once the sockets are closed
        self._forwarding = threading.Event()
        self._closing = threading.Lock()
        self._stop_asked = False
        for sock in (self._sub, self._pub, self._control):
            sock.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, high_water_mark)
        self._pub.setsockopt(zmq.SNDHWM, high_water_mark)
        if max_message_size > 0:
            self._sub.setsockopt(zmq.MAXMSGSIZE, max_message_size)
        # Subscribe to everything ourselves, whoever listens downstream, so a
        # publisher waiting for a subscription hears from us at once.
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        for sock, address, role in ((self._sub, inbound, "relay_inbound"),
                                    (self._pub, outbound, "endpoints[0]")):
            try:
                sock.bind(address)
            except zmq.ZMQError as exc:
                self._close()
                raise TransportError(f"cannot bind [bus] {role} {address}: {exc}") from exc
        self._control.bind(self._control_address)

    @classmethod
    def from_config(cls, config: Config) -> Relay:
        """The relay ``[bus]`` describes, with its queue and frame limits."""
        bus = config.bus
        return cls(bus.relay_inbound, bus.endpoints[0], bus.high_water_mark,
                   bus.frame_limit(config.max_message_bytes))

    #: as a part of notifier serve's supervisor: ``run(stopping)``, ``interrupt()``
    name = "relay"

    def run(self, stopping: threading.Event | None = None) -> None:
        """Forward messages until ``stopping`` is set (then :meth:`interrupt`) or :meth:`stop`.

        The proxy loop ending any other way raises :class:`TransportError`.
        The sockets stay bound then, so :meth:`run` can be called again:
        publishers keep their connections, and what they send meanwhile waits
        in the inbound socket.
        """
        if stopping is None:
            stopping = threading.Event()
        self._forwarding.set()  # before looking at stopping: see interrupt()
        try:
            if not (stopping.is_set() or self._stop_asked):
                log.info("relay: publishers connect to %s, subscribers to %s",
                         self.inbound, self.outbound)
                self._forward()
        finally:
            self._forwarding.clear()
        if not (stopping.is_set() or self._stop_asked):
            raise TransportError("the relay's proxy loop ended although nobody asked it to")
        self.close()

    def _forward(self) -> None:
        """ZeroMQ's own proxy loop, until TERMINATE arrives on the control socket."""
        try:
            zmq.proxy_steerable(self._sub, self._pub, None, self._control)
        except zmq.ContextTerminated:
            pass

    def interrupt(self) -> None:
        """End the proxy loop of a :meth:`run` whose ``stopping`` is set; wait until it has."""
        if self._forwarding.is_set():
            self._terminate(5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask :meth:`run` to return, from any thread, and wait until it has; close."""
        self._stop_asked = True
        if self._forwarding.is_set():
            self._terminate(timeout)
        else:
            self.close()

    def _terminate(self, timeout: float) -> None:
        if self._stopped.is_set():
            return
        try:
            ctrl = self._ctx.socket(zmq.PAIR)
        except zmq.ZMQError:  # run() finished meanwhile and closed the context
            return
        try:
            ctrl.setsockopt(zmq.LINGER, 0)
            ctrl.connect(self._control_address)
            ctrl.send(b"TERMINATE")
            # Closing at once (linger 0) could discard TERMINATE before the proxy reads it.
            self._stopped.wait(timeout)
        finally:
            ctrl.close()

    def start_thread(self) -> threading.Thread:
        """Run the relay in a daemon thread, unsupervised, and return it."""
        thread = threading.Thread(target=self.run, name="relay", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Close the sockets (once); the relay cannot run again."""
        with self._closing:
            if not self._stopped.is_set():
                self._stopped.set()
                self._close()

    def _close(self) -> None:
        for sock in (self._sub, self._pub, self._control):
            if not sock.closed:
                sock.close()
        self._ctx.term()
