"""Cross-origin use: CORS for ``[http] allowed_origins`` only, and no cookie from elsewhere.

A page on an allowed origin may read a feed and open a live stream with
``EventSource`` (the token is in the URL: no credentials are involved). The
paths in ``credentials_paths`` (the inbox's live stream, and what the widget
for other sites reads: :mod:`.widget`) it may also read with credentials:
the session cookie (``EventSource(url, {withCredentials: true})``,
``fetch(url, {credentials: "include"})``), or a token in ``Authorization``.
Their answers to an allowed origin carry ``Access-Control-Allow-Credentials:
true``; no other path's answer does, so an allowed origin cannot read the
rest of the API with someone's cookie. A request from any other origin, or
with no ``Origin`` at all, goes past Starlette's CORS handling untouched, so
its answer carries no CORS header at all, not even for a refused preflight.

A request to the API that carries the session cookie and an ``Origin`` that
is neither an allowed one nor the service's own is refused (403) before
anything reads it: another site's page gets nothing done with someone's
session, whatever the browser's cookie rules let through.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import PREFIX
from .api.auth import COOKIE
from .api.problems import Problem


class AllowedOrigins:
    """ASGI middleware: Starlette's CORS for requests from ``origins``; nothing for others.

    ``own`` is the service's public address (``[http] base_url``): requests from
    its own pages are never refused.
    """

    def __init__(self, app: ASGIApp, origins: Iterable[str],
                 credentials_paths: Iterable[str] = (), own: str = ""):
        self.app = app
        self.origins = frozenset(origin.encode() for origin in origins)
        allowed = sorted(o.decode() for o in self.origins)
        self.cors = CORSMiddleware(app, allow_origins=allowed, allow_methods=["GET"],
                                   allow_headers=["Last-Event-ID"])
        self.credentials_paths = frozenset(credentials_paths)
        self.with_credentials = CORSMiddleware(app, allow_origins=allowed,
                                               allow_methods=["GET"],
                                               allow_headers=["Authorization", "Last-Event-ID"],
                                               allow_credentials=True)
        parts = urlsplit(own)
        self.own = f"{parts.scheme}://{parts.netloc}".lower().encode() if parts.netloc else b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = cookie = host = None
            for name, value in scope["headers"]:
                if name == b"origin":
                    origin = value
                elif name == b"cookie":
                    cookie = value
                elif name == b"host":
                    host = value
            if origin is not None:
                if origin in self.origins:
                    cors = (self.with_credentials if scope["path"] in self.credentials_paths
                            else self.cors)
                    await cors(scope, receive, send)
                    return
                if (cookie is not None and scope["path"].startswith(PREFIX + "/")
                        and COOKIE.encode() + b"=" in cookie
                        and not self._same_origin(origin, host)):
                    await refused(origin)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _same_origin(self, origin: bytes, host: bytes | None) -> bool:
        origin = origin.lower()
        if self.own and origin == self.own:
            return True
        # The address the browser used: the Host header is its own, never the page's.
        # Either scheme: behind a proxy that ends TLS, this side sees http.
        scheme, _, address = origin.partition(b"://")
        return host is not None and scheme in (b"http", b"https") and address == host.lower()

def refused(origin: bytes) -> Response:
    """The 403 for a request with the session cookie from an origin not allowed."""
    shown = origin[:100].decode("latin-1")
    return Problem(403, "Origin not allowed", f"requests with a session from {shown!r} are "
                   "refused; only [http] allowed_origins may use it").response()
