"""Transports by address scheme, and opening publishers and subscribers on them.

ZeroMQ serves ``tcp`` and ``ipc``; AMQP (RabbitMQ, wire-compatible with
fedora-messaging, :mod:`.amqp_transport`) serves ``amqp`` and ``amqps``.
A factory takes the ``[bus]`` settings (or None for the defaults).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import TransportError
from .transport import PublisherTransport, SubscriberTransport, Transport

if TYPE_CHECKING:
    from ..config import BusConfig


def _zmq(bus: BusConfig | None) -> Transport:
    from .zmq_transport import ZmqTransport

    return ZmqTransport()


def _amqp(bus: BusConfig | None) -> Transport:
    # pika is imported only when an amqp:// address is used.
    from .amqp_transport import AmqpTransport

    return AmqpTransport(bus.amqp if bus is not None else None)


#: scheme -> factory of the transport that serves it
TRANSPORTS: dict[str, Callable[[BusConfig | None], Transport]] = {
    "tcp": _zmq, "ipc": _zmq, "amqp": _amqp, "amqps": _amqp}


def scheme_of(address: str) -> str:
    """The scheme of ``address`` (``tcp``, ``amqp``, ...); TransportError if it has none."""
    scheme, sep, _ = address.partition("://")
    if not sep:
        raise TransportError(f"{address!r} is not an address like tcp://127.0.0.1:9940")
    return scheme


def transport_for(address: str, bus: BusConfig | None = None) -> Transport:
    """The transport serving ``address``, chosen by its scheme."""
    scheme = scheme_of(address)
    try:
        factory = TRANSPORTS[scheme]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise TransportError(f"{address!r}: no transport for scheme {scheme!r} "
                             f"(known: {known})") from None
    return factory(bus)


def open_publisher(address: str, *, bind: bool = False, timeout: float = 5.0,
                   high_water_mark: int = 0, bus: BusConfig | None = None
                   ) -> PublisherTransport:
    """Open a publisher on ``address`` with the transport its scheme names."""
    return transport_for(address, bus).publisher(address, bind=bind, timeout=timeout,
                                                 high_water_mark=high_water_mark)


def open_subscriber(addresses: Sequence[str], topics: Sequence[str] = ("",),
                    high_water_mark: int = 0, max_message_size: int = 0, *,
                    bus: BusConfig | None = None, durable: bool = False
                    ) -> SubscriberTransport:
    """Open one subscriber on every address in ``addresses`` (all of one transport).

    ``durable`` asks for the shared, durable queue of ``[bus.amqp]`` (what
    ``notifier serve`` consumes from) rather than a private one; ZeroMQ has
    no queues and ignores it.
    """
    if not addresses:
        raise TransportError("no endpoint to subscribe to: [bus] endpoints is empty")
    transports = {type(transport_for(a, bus)) for a in addresses}
    if len(transports) > 1:
        raise TransportError(f"endpoints mix transports: {', '.join(addresses)}")
    transport = transport_for(addresses[0], bus)
    if scheme_of(addresses[0]) in ("amqp", "amqps"):
        from .amqp_transport import AmqpTransport

        assert isinstance(transport, AmqpTransport)
        return transport.subscriber(addresses, topics, high_water_mark, max_message_size,
                                    durable=durable)
    return transport.subscriber(addresses, topics, high_water_mark, max_message_size)
