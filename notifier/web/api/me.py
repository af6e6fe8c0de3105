"""``GET /users/me``: who is signed in, and the CSRF token their session needs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from ...storage.credentials import NotInMemory
from .auth import Caller, reader
from .context import ApiContext, context

router = APIRouter(tags=["account"])


@router.get("/users/me")
async def me(caller: Caller = Depends(reader),
             ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The signed-in user: name, addresses, groups, feed URL; ``csrf_token`` for a session."""
    try:  # from the service's memory, in the event loop; else from the database
        found = ctx.user(caller.name, memory_only=True)
    except NotInMemory:
        found = await run_in_threadpool(ctx.user, caller.name)
    user = found or {"name": caller.name, "emails": [], "ircnicks": [], "groups": []}
    body: dict[str, Any] = {
        "name": caller.name, "emails": user.get("emails") or [],
        "ircnicks": user.get("ircnicks") or [], "groups": list(caller.groups),
        "is_admin": caller.is_admin, "via": caller.via, "scope": caller.scope}
    if user.get("feed_token"):
        body["feed_url"] = ctx.config.http.feed_url(caller.name, user["feed_token"])
    if caller.csrf:
        body["csrf_token"] = caller.csrf
    return body
