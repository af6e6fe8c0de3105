"""``GET /users/<user>/stream?token=T``: a user's desktop notifications as Server-Sent Events.

Each event is ``id: <outbox row id>``, ``event: notification`` and one
``data:`` line of JSON. Where a stream starts:

* with a ``Last-Event-ID`` header (what ``EventSource`` sends when it
  reconnects): the user's rows after that id, read from the database, then
  live, with nothing missed and nothing twice;
* else at ``?since=ID``, the same way;
* else now: only rows recorded from now on.

The stream opens with ``retry:`` (the client's reconnection delay) and an
``id:`` alone, where it starts: ``EventSource`` takes it as the last event
id without showing an event, so a client that loses the connection before
its first event still resumes exactly there. Idle streams get a keep-alive
comment every ``hub.heartbeat`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import StorageError
from .hub import Channel, Subscriber

log = logging.getLogger(__name__)

#: milliseconds an EventSource waits before it reconnects
RETRY_MS = 2000


def start_after(request: Request) -> int | None | str:
    """Where the stream starts (see the module docstring); a string says what is wrong."""
    for text, name in ((request.headers.get("last-event-id"), "Last-Event-ID"),
                       (request.query_params.get("since"), "since")):
        if text is None or (name == "Last-Event-ID" and not text.strip()):
            continue
        if not text.strip().isdigit():
            return f"{name} must be a row id (a number), not {text[:40]!r}\n"
        return int(text)
    return None


def bad_request(text: str) -> Response:
    return PlainTextResponse(text, status_code=400)


#: what a stream sends first, after ``retry:`` and ``id: <where it starts>``: the rest of
#: that first event (given the id it starts after), or None for none
Opening = Callable[[Subscriber], Awaitable[bytes]]


class EventStream:
    """The response of one stream: an ASGI app that runs until the client leaves.

    ``opening``, if given, makes the first event: its bytes follow the
    ``id:`` line (an ``event:`` and ``data:``, and the blank line that ends it).
    """

    def __init__(self, hub: Channel, user: str, after: int | None,
                 opening: Opening | None = None):
        self.hub = hub
        self.user = user
        self.after = after
        self.opening = opening

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            subscriber = await self.hub.subscribe(self.user, self.after)
        except StorageError as exc:
            log.error("live stream of %s: %s", self.user, exc)
            await PlainTextResponse("the database cannot be read; try again shortly\n",
                                    status_code=503, headers={"Retry-After": "5"})(
                scope, receive, send)
            return
        abort: Callable[[], None] = (scope.get("extensions") or {}).get(
            "notifier.abort", lambda: None)
        subscriber.on_drop = abort
        watcher = asyncio.ensure_future(self._watch(receive, subscriber))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]})
            first = f"retry: {RETRY_MS}\nid: {subscriber.last}\n".encode()
            try:
                first += b"\n" if self.opening is None else await self.opening(subscriber)
            except StorageError as exc:
                log.error("live stream of %s: %s", self.user, exc)
                first += b"\n"
                subscriber.close("error")
            if self.after is not None and not subscriber.closed:
                try:
                    first += await self.hub.replay(subscriber)
                except StorageError as exc:
                    log.error("live stream of %s: %s", self.user, exc)
                    subscriber.close("error")  # the client comes back with its Last-Event-ID
            await self._send(send, first)
            while not subscriber.closed:
                if not await subscriber.wait(self.hub.heartbeat):
                    await self._send(send, b": keep-alive\n\n")
                    continue
                chunk = subscriber.take()
                if chunk:
                    await self._send(send, chunk)
        finally:
            self.hub.unsubscribe(subscriber)
            watcher.cancel()
        # The end of the response: the server then closes a stream it is stopping (or
        # that is gone already: then the send does nothing).
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _send(send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    @staticmethod
    async def _watch(receive: Receive, subscriber: Subscriber) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        subscriber.close("gone")


def stream_response(hub: Channel, user: str, request: Request) -> Response | EventStream:
    """The stream for ``user`` (whose token was checked), or a 400 for a bad start."""
    after = start_after(request)
    if isinstance(after, str):
        return bad_request(after)
    return EventStream(hub, user, after)
