"""The bot's sockets: connected with a timeout, TLS when asked, writes that cannot hang."""

from __future__ import annotations

import socket
import ssl

from ...config import FirehoseNetwork

CONNECT_TIMEOUT = 10.0
#: a write blocked this long means the server stopped reading
WRITE_TIMEOUT = 30.0


def open_socket(spec: FirehoseNetwork, address: tuple[str, int]) -> socket.socket:
    """A socket connected to ``address`` (TLS with ``spec.tls``), for the ``irc`` library."""
    sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
    try:
        if spec.tls:
            context = ssl.create_default_context()
            if not spec.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=spec.host)
    except BaseException:
        sock.close()
        raise
    # reads wait in select() first, so only a write can meet this timeout
    sock.settimeout(WRITE_TIMEOUT)
    return sock
