"""The inbox: notifications newest first, read state, why each came, mute and snooze.

=================================  ===============================================
``GET /inbox``                     a page of notifications (``?cursor=``,
                                   ``?unread=1``), the unread count
``GET /inbox/new``                 ``after``, ``back``: the list items of the
                                   notifications after ``after`` (for live.js)
``POST /inbox/read``               ``id``, ``read`` (``1`` or ``0``): mark one
``POST /inbox/read-all``           ``up_to``: everything up to it is read
``GET /inbox/{id}/why``            the rules that matched, and what matched
``POST /inbox/mute``               ``rule``, ``action`` (``mute``, ``snooze``,
                                   ``unmute``), ``for`` (a snooze's duration)
=================================  ===============================================

Each form has a ``back`` field: the page to return to (a path of this site).
The work is the API's (:mod:`notifier.web.api.inbox`): the same store calls,
the same 404 for what is not the caller's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ...storage.inbox import Inbox
from ..api import inbox as api
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import (
    CSRF_FIELD,
    FRAME_HEADERS,
    PageError,
    Posted,
    base_path,
    environment,
    local_path,
    posted,
    query,
    redirect,
    render,
    signed_in,
    when,
)

router = APIRouter(include_in_schema=False)

#: notifications on one page
PAGE_SIZE = 25
#: the snoozes offered: (duration, label)
SNOOZES = (("1h", "1 hour"), ("8h", "8 hours"), ("1d", "1 day"), ("1w", "1 week"))


@router.get("/inbox")
def inbox_page(request: Request, cursor: str | None = None, unread: str | None = None,
               caller: Caller = Depends(signed_in),
               ctx: ApiContext = Depends(context)) -> Response:
    only_unread = unread == "1"
    # Read first: what arrives meanwhile is on the page, or comes live after it.
    up_to = Inbox(ctx.store, ctx.clock).last_id(caller.name)
    try:
        page = api.list_notifications(cursor or None, PAGE_SIZE, only_unread, caller, ctx)
    except Problem as exc:
        raise PageError(400, "No such page", exc.detail or "") from exc
    back = request.url.path + query(cursor=cursor or None, unread="1" if only_unread else None)
    return render(request, ctx, "inbox.html", caller, items=page["items"],
                  counts=page["counts"], unread=page["counts"]["unread"],
                  next_cursor=page["next_cursor"], cursor=cursor,
                  only_unread=only_unread, back=back, snoozes=SNOOZES, up_to=up_to)


@router.get("/inbox/new")
def new_items(after: int = Query(ge=0, description="the newest notification shown"),
              back: str = "/inbox", caller: Caller = Depends(signed_in),
              ctx: ApiContext = Depends(context)) -> Response:
    """The list items of the caller's notifications after ``after``, newest first (as many
    as a page holds): what the inbox page's script puts on top of its list."""
    items = Inbox(ctx.store, ctx.clock).after(after, [caller.name], PAGE_SIZE,
                                              newest_first=True)
    body = environment().get_template("inbox_items.html").render(
        base=base_path(ctx), csrf=caller.csrf, csrf_field=CSRF_FIELD,
        items=[item.to_dict() for item in items], back=local_path(back, "/inbox"),
        snoozes=SNOOZES)
    return HTMLResponse(body, headers={**FRAME_HEADERS, "Cache-Control": "no-store"})


def _back(form: Posted) -> str:
    return local_path(form.get("back"), "/inbox")


def _number(form: Posted, name: str) -> int:
    try:
        return int(form.get(name))
    except ValueError:
        raise PageError(400, "Bad form", f"the field {name!r} must be a number") from None


@router.post("/inbox/read")
def mark(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    ids = api.Ids(ids=[_number(form, "id")])
    read = form.get("read", "1") != "0"
    try:
        (api.mark_read if read else api.mark_unread)(ids, form.caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return redirect(ctx, _back(form))


@router.post("/inbox/read-all")
def mark_all(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    answer = api.mark_all_read(api.UpTo(up_to=max(0, _number(form, "up_to"))),
                               form.caller, ctx)
    marked = answer["marked"]
    return redirect(ctx, _back(form), f"{marked} notification{'s' if marked != 1 else ''} "
                    "marked read.")


@router.get("/inbox/{notification_id:int}/why")
def why_page(request: Request, notification_id: int, caller: Caller = Depends(signed_in),
             ctx: ApiContext = Depends(context)) -> Response:
    try:
        why = api.why(notification_id, caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return render(request, ctx, "why.html", caller, why=why, snoozes=SNOOZES,
                  back=request.url.path, now=ctx.clock())


@router.post("/inbox/mute")
def switch(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    """Mute, snooze or unmute one of the caller's rules."""
    rule, action = form.get("rule"), form.get("action")
    try:
        if action == "mute":
            api.mute_rule(rule, form.caller, ctx)
            note = f"Rule {rule!r} is muted: it sends nothing until you unmute it."
        elif action == "snooze":
            duration = form.get("for")
            state = api.snooze_rule(rule, _snooze(duration), form.caller, ctx)
            note = f"Rule {rule!r} is snoozed until {_until(state)}."
        elif action == "unmute":
            api.unmute_rule(rule, form.caller, ctx)
            note = f"Rule {rule!r} sends again."
        else:
            raise PageError(400, "Bad form", "the action is mute, snooze or unmute")
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return redirect(ctx, _back(form), note)


def _snooze(duration: str) -> api.Snooze:
    try:
        return api.Snooze.model_validate({"for": duration})
    except ValidationError as exc:
        raise PageError(422, "Bad duration", "a snooze lasts for a duration such as 8h") \
            from exc


def _until(state: dict[str, Any]) -> str:
    return when(state.get("snoozed_until"))
