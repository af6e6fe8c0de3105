"""The listening socket of ``[http] listen``, bound by serve itself.

Binding here, rather than inside the server, lets serve set a large listen
backlog (a restart's reconnect storm fits in it) and report every problem as
one line naming the key, the file and the value.
"""

from __future__ import annotations

import socket

from ..config import Config
from ..errors import ConfigError


def split_listen(listen: str) -> tuple[str, int]:
    """``(host, port)`` of a ``host:port`` or ``[v6]:port`` value; ValueError says what is wrong."""
    host, colon, port_text = listen.strip().rpartition(":")
    if not colon or not port_text.isdigit():
        raise ValueError("no port (write host:port, for example 127.0.0.1:8080)")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (0 to 65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets: [::1]:8080")
    if not host:
        raise ValueError("no host (write host:port, for example 127.0.0.1:8080)")
    return host, port


def bind_listener(config: Config) -> socket.socket:
    """A socket bound to ``[http] listen`` and listening with ``[http] backlog``.

    Raises :class:`~notifier.errors.ConfigError` for a malformed value, a host
    that does not resolve, or an address that cannot be bound (in use, not
    ours), naming the key, the file and the value.
    """
    http = config.http
    where = ", ".join(config.sources) or "the built-in defaults"

    def error(reason: str) -> ConfigError:
        return ConfigError(f"{where}: [http] listen = {http.listen!r}: {reason}")

    try:
        host, port = split_listen(http.listen)
    except ValueError as exc:
        raise error(str(exc)) from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise error(f"cannot resolve host {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(http.backlog)
    except OSError as exc:
        sock.close()
        raise error(f"cannot listen there: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock
