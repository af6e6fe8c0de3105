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
        self._stopped = threading.Event()
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

    def run(self) -> None:
        """Forward messages until :meth:`stop` is called."""
        log.info("relay: publishers connect to %s, subscribers to %s", self.inbound, self.outbound)
        try:
            zmq.proxy_steerable(self._sub, self._pub, None, self._control)
        except zmq.ContextTerminated:
            pass
        finally:
            self._stopped.set()
            self._close()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask :meth:`run` to return, from any thread, and wait until it has."""
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
        """Run the relay in a daemon thread and return it."""
        thread = threading.Thread(target=self.run, name="relay", daemon=True)
        thread.start()
        return thread

    def _close(self) -> None:
        for sock in (self._sub, self._pub, self._control):
            if not sock.closed:
                sock.close()
        self._ctx.term()
