"""Publishing: envelopes built, optionally signed, and handed to a transport."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..config import Config
from .envelope import EnvelopeBuilder, canonical_json
from .transport import PublisherTransport
from .transports import open_publisher


def guess_modname(skip_prefix: str = "notifier") -> str:
    """The top-level package name of the first caller outside ``skip_prefix``.

    A script run directly is named after its file, as fedmsg does.
    """
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        top = name.partition(".")[0]
        if top and top != skip_prefix and not name.startswith(("importlib", "runpy")):
            if top == "__main__":
                path = frame.f_globals.get("__file__") or ""
                stem = path.rsplit("/", 1)[-1].rpartition(".")[0]
                return stem or "__main__"
            return top
        frame = frame.f_back
    return "__main__"


class Publisher:
    """Publishes messages on the bus. Safe to share between threads.

    It connects to ``[bus] relay_inbound``, or binds ``[bus] publish_endpoint``
    when that is set. Nothing is dropped silently: when no subscriber is there
    within ``timeout`` seconds, :meth:`publish` raises
    :class:`~notifier.errors.NoRelayError`.

    On AMQP (``relay_inbound = "amqp://..."``) each message goes out in
    fedora-messaging's format; ``describe`` (an envelope -> its description,
    such as :meth:`notifier.meta.Describer.describe_for_headers`) fills its headers:
    severity, and the users, groups and packages it concerns. :meth:`publish`
    returns once the message is sent; the broker's confirmations are awaited
    ``[bus.amqp] confirm_window`` messages behind, and a message it refused
    or never confirmed raises :class:`~notifier.errors.PublishError` from a
    later :meth:`publish`, from :meth:`flush` or from :meth:`close`.
    """

    def __init__(self, config: Config, *, timeout: float | None = None,
                 transport: PublisherTransport | None = None,
                 describe: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None):
        self.config = config
        bus = config.bus
        self.timeout = bus.publish_timeout if timeout is None else timeout
        self.bind = bus.publish_endpoint is not None
        self.address = bus.publish_endpoint or bus.relay_inbound
        self._builder = EnvelopeBuilder(config.topic_prefix, config.environment)
        self._signer = None
        if config.sign_messages:
            from .signing import Signer

            self._signer = Signer.from_config(config)
        self._lock = threading.Lock()
        self._transport = transport or open_publisher(
            self.address, bind=self.bind, timeout=self.timeout,
            high_water_mark=bus.high_water_mark, bus=bus)
        if describe is not None:
            self._transport.describe_with(describe)

    def publish(self, topic: str | None = None, msg: Any = None,
                modname: str | None = None) -> None:
        """Publish ``msg`` on ``{prefix}.{environment}.{modname}.{topic}``.

        ``modname`` defaults to the calling package's top-level name.
        """
        if modname is None:
            modname = guess_modname()
        topic = topic or ""
        msg = {} if msg is None else msg
        if self._signer is None:
            frames = self._builder.encode(modname, topic, msg)
        else:
            envelope = self._signer.sign(self._builder.build(modname, topic, msg))
            frames = (envelope["topic"].encode("utf-8"), canonical_json(envelope).encode("ascii"))
        with self._lock:
            self._transport.send(*frames)

    @staticmethod
    def wants_description(config: Config) -> bool:
        """Whether messages published with ``config`` carry their description (AMQP)."""
        address = config.bus.publish_endpoint or config.bus.relay_inbound
        return address.startswith(("amqp://", "amqps://"))

    def flush(self) -> None:
        """Wait until the bus confirmed every message published (AMQP; up to the timeout).

        Raises :class:`~notifier.errors.PublishError` naming each message the
        broker refused or did not confirm.
        """
        with self._lock:
            self._transport.flush()

    def close(self) -> None:
        """Flush what is queued (up to the timeout) and disconnect."""
        with self._lock:
            self._transport.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
