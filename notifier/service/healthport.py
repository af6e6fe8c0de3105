"""``/healthz`` and ``/metrics`` for a worker that serves no web app (``--role ingest|deliver``).

A worker started with a role without ``http`` still answers on ``[http]
listen``, so that its health can be probed and its metrics scraped, but
with these alone: ``GET /healthz`` (ready), ``/healthz/live``,
``/healthz/ready`` (200 or 503, a JSON report naming the parts of this
worker) and ``/metrics`` (Prometheus text). Anything else is 404.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..config import Config
from ..errors import HttpError
from ..web.binding import bind_listener

log = logging.getLogger(__name__)


class HealthServer:
    """The supervised part ``http`` of a worker without the web app."""

    name = "http"

    def __init__(self, config: Config, *, health: Callable[[str], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes]):
        self.socket = bind_listener(config)
        self._server: ThreadingHTTPServer | None = None
        handler = _handler(health, metrics)
        server = ThreadingHTTPServer(self.socket.getsockname()[:2], handler,
                                     bind_and_activate=False)
        server.socket.close()
        server.socket = self.socket
        server.daemon_threads = True
        self._server = server

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    def on_recorded(self) -> None:
        """Nothing streams from here."""

    def run(self, stopping: threading.Event) -> None:
        assert self._server is not None
        server = self._server
        stopper = threading.Thread(target=lambda: (stopping.wait(), server.shutdown()),
                                   name="http-stop", daemon=True)
        stopper.start()
        server.serve_forever(poll_interval=0.5)
        if not stopping.is_set():
            raise HttpError("the health endpoint stopped by itself")

    def close(self) -> None:
        self.socket.close()


def _handler(health: Callable[[str], tuple[bool, dict[str, Any]]],
             metrics: Callable[[], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "notifier"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            kinds = {"/healthz": "ready", "/healthz/ready": "ready", "/healthz/live": "live"}
            if path in kinds:
                ok, report = health(kinds[path])
                self._answer(200 if ok else 503, "application/json",
                             json.dumps(report).encode())
            elif path == "/metrics":
                self._answer(200, "text/plain; version=0.0.4; charset=utf-8", metrics())
            else:
                self._answer(404, "text/plain; charset=utf-8",
                             b"not found: this worker serves /healthz and /metrics only\n")

        def _answer(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("health endpoint: " + format, *args)

    return Handler
