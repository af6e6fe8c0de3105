"""The transport interface: how frames get onto and off the bus.

Callers (the publisher, ``notifier-tail``, ``notifier serve``) speak only to
:class:`PublisherTransport` and :class:`SubscriberTransport`, obtained from
:func:`notifier.bus.transports.open_publisher` and
:func:`~notifier.bus.transports.open_subscriber`, which choose the
transport by the address's scheme.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import TransportError


class PublisherTransport(abc.ABC):
    """Sends ``(topic, envelope)`` pairs. Implementations need not be thread-safe."""

    @abc.abstractmethod
    def send(self, topic: bytes, envelope: bytes) -> None:
        """Hand one message to the bus, or raise :class:`~notifier.errors.PublishError`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush what can be flushed and release the connection."""

    def flush(self) -> None:
        """Wait until every message sent is confirmed, where the transport confirms (AMQP).

        Raises :class:`~notifier.errors.PublishError` naming the messages
        that were refused or not confirmed. The others have nothing to wait for.
        """
        return None

    def describe_with(self, describe: Callable[[dict[str, Any]], Mapping[str, Any]]) -> None:
        """Describe each message with ``describe`` (an envelope -> its description).

        For transports whose wire format carries metadata (AMQP's headers);
        the others ignore it.
        """
        return None

    def __enter__(self) -> PublisherTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SubscriberTransport(abc.ABC):
    """Receives ``(topic, envelope)`` pairs, raw, as they came off the wire."""

    @abc.abstractmethod
    def recv(self, timeout: float | None = None) -> tuple[bytes, bytes] | None:
        """Return the next message, or ``None`` if ``timeout`` seconds pass first.

        A message without exactly two frames raises :class:`MalformedFrames`,
        so a caller can count it and go on to the next.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    # Acknowledgements, for transports that hold a message until it is settled
    # (AMQP). The others deliver each message once, and these do nothing.

    def last_token(self) -> Any:
        """A handle on the message :meth:`recv` returned last, for :meth:`commit`/:meth:`reject`."""
        return None

    def commit(self, tokens: Iterable[Any]) -> None:
        """These messages are recorded for good: the bus may forget them."""
        return None

    def reject(self, tokens: Iterable[Any]) -> None:
        """These messages are bad: the bus dead-letters them, and never delivers them again."""
        return None

    def trouble(self) -> str | None:
        """Why nothing can arrive now (a broker that cannot be reached), for health; or None."""
        return None

    def __enter__(self) -> SubscriberTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MalformedFrames(TransportError):
    """A message arrived with the wrong number of frames."""

    def __init__(self, frames: Sequence[bytes]):
        super().__init__(f"expected 2 frames (topic, envelope), got {len(frames)}")
        self.frames = list(frames)


class Transport(abc.ABC):
    """A family of addresses, such as ZeroMQ's ``tcp://`` and ``ipc://``."""

    schemes: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def publisher(self, address: str, *, bind: bool, timeout: float,
                  high_water_mark: int) -> PublisherTransport:
        """A publisher connected to (or, with ``bind``, listening on) ``address``."""

    @abc.abstractmethod
    def subscriber(self, addresses: Sequence[str], topics: Sequence[str],
                   high_water_mark: int, max_message_size: int = 0) -> SubscriberTransport:
        """A subscriber connected to every one of ``addresses``.

        ``max_message_size`` (bytes, 0 for none) bounds one received frame, where
        the transport can: a peer sending a bigger one may be disconnected.
        """
