"""Cross-origin use of feeds and live streams: CORS for ``[http] allowed_origins`` only.

A page on an allowed origin may read a feed and open a live stream with
``EventSource`` (the token is in the URL: no credentials are involved). The
paths in ``credentials_paths`` (the inbox's live stream) it may also open
with credentials, the session cookie (``EventSource(url, {withCredentials:
true})``): their answers to an allowed origin carry
``Access-Control-Allow-Credentials: true``; no other path's answer does, so an
allowed origin cannot read the rest of the API with someone's cookie. A
request from any other origin, or with no ``Origin`` at all, goes past
Starlette's CORS handling untouched, so its answer carries no CORS header at
all, not even for a refused preflight.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class AllowedOrigins:
    """ASGI middleware: Starlette's CORS for requests from ``origins``; nothing for others."""

    def __init__(self, app: ASGIApp, origins: Iterable[str],
                 credentials_paths: Iterable[str] = ()):
        self.app = app
        self.origins = frozenset(origin.encode() for origin in origins)
        allowed = sorted(o.decode() for o in self.origins)
        self.cors = CORSMiddleware(app, allow_origins=allowed, allow_methods=["GET"],
                                   allow_headers=["Last-Event-ID"])
        self.credentials_paths = frozenset(credentials_paths)
        self.with_credentials = CORSMiddleware(app, allow_origins=allowed,
                                               allow_methods=["GET"],
                                               allow_headers=["Last-Event-ID"],
                                               allow_credentials=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.origins:
            for name, value in scope["headers"]:
                if name == b"origin":
                    if value in self.origins:
                        cors = (self.with_credentials if scope["path"] in self.credentials_paths
                                else self.cors)
                        await cors(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
