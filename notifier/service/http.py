"""The service's HTTP endpoints.

=====================================  ===========================================
``GET /healthz/live``                  200 while the process is worth keeping, else 503
``GET /healthz/ready``                 200 while every part works, else 503 naming it
``GET /healthz``                       the same as ``/healthz/ready``
``GET /metrics``                       Prometheus text format
``GET /feeds/<user>.atom?token=T``     the user's Atom feed (``.rss`` for RSS 2.0)
``GET /users/<user>/stream?token=T``   the user's desktop notifications, as Server-Sent Events
``GET /unsubscribe/<token>``           a page with a button that disables the rule
``POST /unsubscribe/<token>``          disables the rule (RFC 8058 one-click)
=====================================  ===========================================

A wrong or missing token is a 404, the same as an unknown user, so neither
tells whether a user exists. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import InputError, NotifierError

log = logging.getLogger(__name__)

#: seconds between keep-alive comments on an idle stream
STREAM_HEARTBEAT = 15.0


class Endpoints:
    """What the HTTP handler needs from the service; see :class:`~.app.Service`."""

    def __init__(self, *, health: Callable[[str], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes],
                 user: Callable[[str], dict[str, Any] | None],
                 feed: Callable[[dict[str, Any], str, dict[str, str]],
                                tuple[int, dict[str, str], bytes]],
                 stream_rows: Callable[[str, int], list[tuple[int, dict[str, Any]]]],
                 wait_for_rows: Callable[[float], None],
                 check_unsubscribe: Callable[[str], tuple[str, str]],
                 unsubscribe: Callable[[str], tuple[str, str]],
                 stopping: threading.Event):
        self.health = health
        self.metrics = metrics
        self.user = user
        self.feed = feed
        self.stream_rows = stream_rows
        self.wait_for_rows = wait_for_rows
        self.check_unsubscribe = check_unsubscribe
        self.unsubscribe = unsubscribe
        self.stopping = stopping


def token_ok(user: dict[str, Any] | None, token: str | None) -> bool:
    """Whether ``token`` is ``user``'s feed token, compared in constant time."""
    expected = (user or {}).get("feed_token") or ""
    given = token or ""
    # Compare even when there is no user, so timing does not tell users apart.
    return hmac.compare_digest(given.encode(), expected.encode()) and bool(user) and bool(given)


class Handler(BaseHTTPRequestHandler):
    """One request; the routes are in the module docstring."""

    server_version = "notifier"
    protocol_version = "HTTP/1.1"
    endpoints: Endpoints  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._send(404, b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        try:
            if path in ("/healthz", "/healthz/ready", "/healthz/live"):
                ok, report = self.endpoints.health("live" if path.endswith("/live") else "ready")
                body = json.dumps(report).encode() + b"\n"
                self._send(200 if ok else 503, body, "application/json",
                           {"Cache-Control": "no-store"})
            elif path == "/metrics":
                self._send(200, self.endpoints.metrics(),
                           "text/plain; version=0.0.4; charset=utf-8")
            elif path.startswith("/feeds/"):
                self._feed(path[len("/feeds/"):], query.get("token"))
            elif path.startswith("/users/") and path.endswith("/stream"):
                self._stream(path[len("/users/"):-len("/stream")], query.get("token"))
            elif path.startswith("/unsubscribe/"):
                self._unsubscribe_page(path[len("/unsubscribe/"):])
            else:
                self._not_found()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except NotifierError as exc:
            log.error("%s %s: %s", self.command, path, exc)
            self._send(500, f"error: {exc}\n".encode())

    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(length, 65536))  # "List-Unsubscribe=One-Click"; nothing else needed
        if not path.startswith("/unsubscribe/"):
            self._not_found()
            return
        try:
            user, rule = self.endpoints.unsubscribe(path[len("/unsubscribe/"):])
        except InputError:
            self._not_found()
            return
        self._send(200, f"Rule {rule!r} of {user} is now disabled.\n".encode())

    def _feed(self, name: str, token: str | None) -> None:
        user_name, dot, fmt = name.rpartition(".")
        if not dot or fmt not in ("atom", "rss"):
            self._not_found()
            return
        user = self.endpoints.user(user_name)
        if not token_ok(user, token):
            self._not_found()
            return
        assert user is not None
        status, headers, body = self.endpoints.feed(user, fmt, dict(self.headers.items()))
        content_type = ("application/atom+xml" if fmt == "atom" else "application/rss+xml") \
            + "; charset=utf-8"
        if status == 304:
            self.send_response(304)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(status, body, content_type, headers)

    def _unsubscribe_page(self, token: str) -> None:
        try:
            user, rule = self.endpoints.check_unsubscribe(token)
        except InputError:
            self._not_found()
            return
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribe</title>"
            "</head><body><form method='post'>"
            f"<p>Stop the notifications of rule <b>{html.escape(rule)}</b> "
            f"for {html.escape(user)}?</p>"
            "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
            "<button type='submit'>Disable the rule</button></form></body></html>\n")
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _stream(self, user_name: str, token: str | None) -> None:
        user = self.endpoints.user(user_name)
        if not token_ok(user, token):
            self._not_found()
            return
        last = self.headers.get("Last-Event-ID") or "0"
        try:
            after = int(last)
        except ValueError:
            self._send(400, b"Last-Event-ID must be a number\n")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b"retry: 2000\n\n")
        self.wfile.flush()
        quiet_since = time.monotonic()
        while not self.endpoints.stopping.is_set():
            rows = self.endpoints.stream_rows(user_name, after)
            for row_id, payload in rows:
                data = json.dumps(payload, ensure_ascii=False)
                self.wfile.write(f"id: {row_id}\nevent: notification\ndata: {data}\n\n"
                                 .encode())
                after = row_id
            if rows:
                self.wfile.flush()
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= STREAM_HEARTBEAT:
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                quiet_since = time.monotonic()
            else:
                self.endpoints.wait_for_rows(1.0)


def make_server(listen: str, endpoints: Endpoints) -> ThreadingHTTPServer:
    """An HTTP server bound to ``listen`` (``host:port``), not yet serving."""
    host, _, port = listen.rpartition(":")
    handler = type("BoundHandler", (Handler,), {"endpoints": endpoints})
    server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), handler)
    server.daemon_threads = True
    return server
