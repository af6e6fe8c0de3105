"""Transports by address scheme, and opening publishers and subscribers on them.

ZeroMQ serves ``tcp`` and ``ipc``. An AMQP transport (RabbitMQ,
wire-compatible with fedora-messaging) registers under ``amqp``/``amqps``
in :data:`TRANSPORTS` without touching callers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import TransportError
from .transport import PublisherTransport, SubscriberTransport, Transport


def _zmq() -> Transport:
    from .zmq_transport import ZmqTransport

    return ZmqTransport()


#: scheme -> factory of the transport that serves it
TRANSPORTS = {"tcp": _zmq, "ipc": _zmq}


def transport_for(address: str) -> Transport:
    """The transport serving ``address``, chosen by its scheme."""
    scheme, sep, _ = address.partition("://")
    if not sep:
        raise TransportError(f"{address!r} is not an address like tcp://127.0.0.1:9940")
    try:
        factory = TRANSPORTS[scheme]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise TransportError(f"{address!r}: no transport for scheme {scheme!r} "
                             f"(known: {known})") from None
    return factory()


def open_publisher(address: str, *, bind: bool = False, timeout: float = 5.0,
                   high_water_mark: int = 0) -> PublisherTransport:
    """Open a publisher on ``address`` with the transport its scheme names."""
    return transport_for(address).publisher(address, bind=bind, timeout=timeout,
                                            high_water_mark=high_water_mark)


def open_subscriber(addresses: Sequence[str], topics: Sequence[str] = ("",),
                    high_water_mark: int = 0, max_message_size: int = 0
                    ) -> SubscriberTransport:
    """Open one subscriber on every address in ``addresses`` (all of one transport)."""
    if not addresses:
        raise TransportError("no endpoint to subscribe to: [bus] endpoints is empty")
    transports = {type(transport_for(a)) for a in addresses}
    if len(transports) > 1:
        raise TransportError(f"endpoints mix transports: {', '.join(addresses)}")
    return transport_for(addresses[0]).subscriber(addresses, topics, high_water_mark,
                                                  max_message_size)
