"""Request framing the application refuses before any route sees it.

* A request carrying both ``Content-Length`` and ``Transfer-Encoding`` is a
  400: the two disagree on where the body ends, and a proxy in front may
  pick the other one (request smuggling; RFC 9112 section 6.1 lets a server
  reject it).
* A body longer than ``max_body_bytes`` is a 413: at once when
  Content-Length says so, else as soon as the chunks read add up to more.
* Headers (with the request target) longer than ``max_header_bytes`` are a
  431. h11 refuses them too, with a 400, when they arrive in pieces; this
  catches those that arrive whole in one read.

Both answers close the connection, so nothing after them on it is read as
another request.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestLimits:
    """ASGI middleware applying the rules in the module docstring."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_header_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
            len(name) + len(value) + 4 for name, value in scope["headers"])
        if size > self.max_header_bytes:
            await refuse(send, 431, f"headers may have {self.max_header_bytes} bytes at most\n")
            return
        names = [name for name, _ in scope["headers"]]
        if b"transfer-encoding" in names and b"content-length" in names:
            await refuse(send, 400, "Content-Length and Transfer-Encoding together\n")
            return
        for name, value in scope["headers"]:
            # h11 has checked that it is one number, if it is there.
            if name == b"content-length" and int(value) > self.max_body_bytes:
                await refuse(send, 413, f"a body may have {self.max_body_bytes} bytes at most\n")
                return
        started = refused = False
        seen = 0

        async def counting_receive() -> Message:
            # Past the limit, the 413 goes out and the application is told the client left.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    refused = True
                    if started:  # too late for a 413: drop the connection
                        (scope.get("extensions") or {}).get("notifier.abort", lambda: None)()
                    else:
                        await refuse(send, 413,
                                     f"a body may have {self.max_body_bytes} bytes at most\n")
                    return {"type": "http.disconnect"}
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # what the application answers to a refused request goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except ClientDisconnect:
            if not refused:
                raise


async def refuse(send: Send, status: int, text: str, headers: Any = ()) -> None:
    """Answer ``status`` with ``text`` and close the connection."""
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})
