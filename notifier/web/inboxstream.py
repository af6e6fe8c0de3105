"""``GET /api/v1/notifications/stream``: the caller's inbox, live, as Server-Sent Events.

Who: a signed-in browser (the session cookie), or a personal access token of
either scope, as ``Authorization: Bearer`` or ``?token=`` (``EventSource``
sends no headers of its own). Refusals are the API's (401, 429; problem+json).

What: first ``event: counts`` with ``{"total", "unread"}`` as they were
where the stream starts; then, for each new notification, ``id: <inbox id>``,
``event: notification`` and the same JSON object as one item of ``GET
/api/v1/notifications``; a keep-alive comment when idle. The stream starts
after ``Last-Event-ID`` (what ``EventSource`` sends when it reconnects), else
after ``?since=ID``, else now (see :mod:`.stream`); a resuming stream gets
its newest missed notifications, at most the channel's ``replay_limit``.

Pages on ``[http] allowed_origins`` may open it with credentials
(``EventSource(url, {withCredentials: true})``): see :mod:`.cors`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..storage.inbox import Inbox
from .api import PREFIX
from .api.auth import Caller, limit_address, reader
from .api.context import ApiContext
from .api.problems import Problem
from .hub import Channel, Subscriber
from .stream import EventStream, start_after

#: the stream's path
PATH = f"{PREFIX}/notifications/stream"


async def stream_caller(request: Request, ctx: ApiContext) -> Caller:
    """Who opens the stream, by the API's rules (:class:`Problem` when nobody, or too
    often); a ``?token=`` counts as a Bearer token when there is no Authorization header."""
    await limit_address(request, ctx)
    token = request.query_params.get("token")
    if token is not None and "authorization" not in request.headers:
        headers = [*request.scope["headers"], (b"authorization", f"Bearer {token}".encode())]
        request = Request({**request.scope, "headers": headers})
    return await reader(request, ctx)


def counts_event(total: int, unread: int) -> bytes:
    """The rest of the opening event (after its ``id:`` line)."""
    data = json.dumps({"total": total, "unread": unread}, separators=(",", ":"))
    return f"event: counts\ndata: {data}\n\n".encode()


async def open_stream(channel: Channel, ctx: ApiContext, request: Request
                      ) -> Response | EventStream:
    """The caller's stream, or the problem that refuses it."""
    try:
        caller = await stream_caller(request, ctx)
    except Problem as exc:
        return exc.response()
    after = start_after(request)
    if isinstance(after, str):
        field = "Last-Event-ID" if after.startswith("Last-Event-ID") else "since"
        return Problem(400, "Invalid request", after.strip(), field=field).response()
    inbox = Inbox(ctx.store, ctx.clock)

    async def opening(subscriber: Subscriber) -> bytes:
        counts = await run_in_threadpool(inbox.counts, caller.name, subscriber.last)
        return counts_event(counts.total, counts.unread)

    return EventStream(channel, caller.name, after, opening)


class StreamResponse(Response):
    """An ASGI app as a response, so that a FastAPI route may return a stream."""

    media_type = "text/event-stream"

    def __init__(self, app: Any, status_code: int = 200):
        # no body, no headers: ``app`` sends its own
        self.app = app
        self.background = None
        self.status_code = status_code
        self.raw_headers = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


#: what the API's schema says of the route (its responses)
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-Sent Events: ``counts`` first, then one ``notification`` "
                         "event per new notification (``id`` is its id)",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    400: {"description": "``Last-Event-ID`` or ``since`` is not an id"},
    401: {"description": "no session and no (valid) token"},
}
