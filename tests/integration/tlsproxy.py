"""A TLS front for a plain TCP server on loopback, as a broker's TLS listener would be.

The RabbitMQ here listens in plain AMQP only; :class:`TlsFront` accepts TLS
connections on a port of its own, with a certificate of the test's CA, and
passes the bytes through to the broker, so ``amqps://`` clients talk real
TLS to it and real AMQP to the broker behind.
"""

from __future__ import annotations

import socket
import ssl
import threading
from types import TracebackType


class TlsFront:
    """Listens on 127.0.0.1 (:attr:`port`); each TLS connection is piped to ``target``."""

    def __init__(self, context: ssl.SSLContext, target: tuple[str, int]):
        self.context = context
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        #: TLS handshakes completed, and those that failed (the client refused us, say)
        self.handshakes = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tls-front", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.failed += 1
            raw.close()
            return
        with self._lock:
            self.handshakes += 1
        upstream = socket.create_connection(self.target)
        threading.Thread(target=_pipe, args=(upstream, tls), daemon=True).start()
        _pipe(tls, upstream)

    def close(self) -> None:
        self._stopped.set()
        self.listener.close()

    def __enter__(self) -> TlsFront:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # either side went away: both are closed below
    finally:
        for s in (source, sink):
            try:
                s.close()
            except OSError:
                pass
