"""Keep third-party code off the network while it describes a message.

Some fedmsg.meta processors fetch things (a patch from dist-git, an update
from Bodhi, a FAS user list). Describing must never wait on the network, so
those processors run inside :func:`offline`: for the duration, in the
calling thread only, connecting an internet socket and resolving a host
name raise :class:`NetworkBlocked`, an ``OSError``, which the libraries
involved treat as a failed connection.

The hooks sit on the ``socket`` module only while at least one thread is
inside :func:`offline`, and are removed when the last one leaves; other
threads pass straight through them. Unix-domain sockets (syslog, D-Bus) are
not affected.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import NotifierError

_INTERNET = (socket.AF_INET, socket.AF_INET6)
_MISSING = object()


class NetworkBlocked(NotifierError, ConnectionRefusedError):
    """A network access attempted inside :func:`offline`."""


class Attempts(list[str]):
    """The network accesses blocked inside one :func:`offline` block, as text."""


class _Hooks:
    """The socket hooks shared by every thread, installed while any thread needs them.

    This is process-wide because the ``socket`` module is: two independent
    installers would restore each other's hooks in the wrong order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._local = threading.local()
        # What the hooks replaced: (owner, name) -> the owner's own attribute or _MISSING.
        self._saved: dict[tuple[Any, str], Any] = {}
        # The functions the hooks call through to when the thread is not offline.
        self._real: dict[str, Callable[..., Any]] = {}
        self._patches = [(socket.socket, "connect", self._connect_hook("connect")),
                         (socket.socket, "connect_ex", self._connect_hook("connect_ex"))]
        self._patches += [(socket, name, self._resolver_hook(name))
                          for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex")]

    def stack(self) -> list[Attempts]:
        try:
            return self._local.stack  # type: ignore[no-any-return]
        except AttributeError:
            stack = self._local.stack = []
            return stack

    def _blocked(self, what: str) -> NetworkBlocked:
        self.stack()[-1].append(what)
        return NetworkBlocked(111, f"network access blocked while describing a message: {what}")

    def _connect_hook(self, name: str) -> Callable[..., Any]:
        def hook(sock: socket.socket, address: Any) -> Any:
            if sock.family in _INTERNET and self.stack():
                raise self._blocked(f"connect to {address!r}")
            return self._real[name](sock, address)
        hook.__name__ = name
        return hook

    def _resolver_hook(self, name: str) -> Callable[..., Any]:
        def hook(host: Any, *args: Any, **kwargs: Any) -> Any:
            if self.stack():
                raise self._blocked(f"look up {host!r}")
            return self._real[name](host, *args, **kwargs)
        hook.__name__ = name
        return hook

    def enter(self) -> Attempts:
        attempts = Attempts()
        with self._lock:
            if self._users == 0:
                for owner, name, hook in self._patches:
                    self._saved[owner, name] = owner.__dict__.get(name, _MISSING)
                    self._real[name] = getattr(owner, name)
                    setattr(owner, name, hook)
            self._users += 1
        self.stack().append(attempts)
        return attempts

    def leave(self) -> None:
        self.stack().pop()
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for (owner, name), value in self._saved.items():
                    if value is _MISSING:
                        delattr(owner, name)
                    else:
                        setattr(owner, name, value)
                self._saved.clear()


_HOOKS = _Hooks()


@contextmanager
def offline() -> Iterator[Attempts]:
    """Block network access in this thread for the duration; yield the blocked attempts."""
    attempts = _HOOKS.enter()
    try:
        yield attempts
    finally:
        _HOOKS.leave()
