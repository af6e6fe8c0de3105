"""notifier: per-user notifications for a fedmsg-style message bus.

Publishing, as with fedmsg::

    import notifier
    notifier.publish(topic="testing", modname="test", msg={"test": "Hello World"})

:func:`publish` uses a process-wide :class:`~notifier.bus.publisher.Publisher`
built on first use from the configuration (see :mod:`notifier.config`). It is
the one piece of process-wide state, kept because fedmsg's API has no object
to hold it; code that wants its own builds a ``Publisher`` explicitly.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from .config import Config, load_config
from .errors import NotifierError

__version__ = "0.1.0"
__all__ = ["Config", "NotifierError", "Publisher", "flush", "init", "publish", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "Publisher":
        from .bus.publisher import Publisher

        return Publisher
    raise AttributeError(name)


class _DefaultPublisher:
    """Holds the process-wide publisher; rebuilt after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._publisher: Any = None
        self._pid = 0
        self._config: Config | None = None

    def configure(self, config: Config | str | None) -> None:
        with self._lock:
            self._close_locked()
            self._config = load_config(config) if not isinstance(config, Config) else config

    def get(self) -> Any:
        publisher = self._publisher
        if publisher is not None and self._pid == os.getpid():
            return publisher
        with self._lock:
            if self._publisher is None or self._pid != os.getpid():
                from .bus.publisher import Publisher

                config = self._config or load_config()
                describe = None
                if Publisher.wants_description(config):  # AMQP headers carry the metadata
                    from .meta import Describer

                    describe = Describer(config).describe_for_headers
                self._publisher = Publisher(config, describe=describe)
                self._pid = os.getpid()
            return self._publisher

    def flush(self) -> None:
        with self._lock:
            if self._publisher is not None and self._pid == os.getpid():
                self._publisher.flush()

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._publisher is not None and self._pid == os.getpid():
            self._publisher.close()
        self._publisher = None


_default = _DefaultPublisher()
atexit.register(_default.close)


def init(config: Config | str | None = None) -> None:
    """Choose the configuration :func:`publish` uses (a ``Config`` or a file path)."""
    _default.configure(config)


def publish(topic: str | None = None, msg: Any = None, modname: str | None = None,
            **_ignored: Any) -> None:
    """Publish ``msg`` on the bus, as ``fedmsg.publish`` does.

    Raises :class:`~notifier.errors.NoRelayError` if no relay subscribed
    within ``[bus] publish_timeout``; the message is never dropped silently.
    On AMQP it returns once the message is sent, and a message the broker
    refused or did not confirm raises :class:`~notifier.errors.PublishError`
    from a later call or from :func:`flush` (which the end of the process
    calls too, where an error can only be printed: call it yourself to act on one).
    """
    from .bus.publisher import guess_modname

    _default.get().publish(topic=topic, msg=msg,
                           modname=modname if modname is not None else guess_modname())


def flush() -> None:
    """Wait until the bus confirmed everything :func:`publish` sent (AMQP).

    Raises :class:`~notifier.errors.PublishError` naming each message the
    broker refused or did not confirm within ``[bus] publish_timeout``.
    """
    _default.flush()
