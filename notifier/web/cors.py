"""Cross-origin use of feeds and live streams: CORS for ``[http] allowed_origins`` only.

A page on an allowed origin may read a feed and open a live stream with
``EventSource`` (the token is in the URL: no credentials are involved). A
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

    def __init__(self, app: ASGIApp, origins: Iterable[str]):
        self.app = app
        self.origins = frozenset(origin.encode() for origin in origins)
        self.cors = CORSMiddleware(app, allow_origins=[o.decode() for o in self.origins],
                                   allow_methods=["GET"], allow_headers=["Last-Event-ID"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.origins:
            for name, value in scope["headers"]:
                if name == b"origin":
                    if value in self.origins:
                        await self.cors(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
