"""The caller's notifications, why each came, and muting the rules that sent them.

=========================================  ==============================================
``GET /notifications``                     newest first: ``items``, ``next_cursor``,
                                           ``counts``; ``?cursor=&limit=&unread=true``
``GET /notifications/counts``              ``{"total", "unread"}``
``POST /notifications/read``               ``{"ids": [...]}`` marked read
``POST /notifications/unread``             ``{"ids": [...]}`` marked unread
``POST /notifications/read-all``           ``{"up_to": id}``: everything up to that one
``GET /notifications/{id}/why``            the rules that matched, and what matched
``POST /rules/{name}/mute``                the rule sends nothing until unmuted
``POST /rules/{name}/snooze``              ``{"for": "8h"}``: nothing until then
``POST /rules/{name}/unmute``              the rule sends again (ends a snooze too)
=========================================  ==============================================

Every notification the caller got is here, whatever its destinations (see
:mod:`notifier.storage.inbox`). Rules are named as in :mod:`.rules`. Another
user's notification or rule is a 404, as one that does not exist; so is a
list of ids naming one, and then nothing is marked. Muting and snoozing go
through the store's change log (:mod:`notifier.storage.mutes`), and the
running service applies them before the answer goes back. Email's one-click
unsubscribe link mutes the rule the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ...config import parse_duration
from ...errors import InputError, StorageError
from ...storage.inbox import MAX_LIMIT, Inbox
from ...storage.mutes import Mutes, RuleState
from .auth import Caller, reader, writer
from .context import ApiContext, context
from .problems import Problem

log = logging.getLogger(__name__)

router = APIRouter(tags=["inbox"])

#: the longest snooze: beyond that, mute the rule
MAX_SNOOZE = 366 * 86400


class Ids(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] = Field(min_length=1, max_length=1000,
                           description="ids of the caller's notifications")


class UpTo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    up_to: int = Field(ge=0, description="the newest notification the caller has seen; "
                                         "those after it stay unread")


class Snooze(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    duration: str = Field(alias="for", examples=["8h"],
                          description="a duration: 30m, 8h, 2d, 1w (at most a year)")


def _counts(inbox: Inbox, user: str) -> dict[str, int]:
    counts = inbox.counts(user)
    return {"total": counts.total, "unread": counts.unread}


@router.get("/notifications")
def list_notifications(cursor: str | None = Query(None, description="from next_cursor"),
                       limit: int = Query(50, ge=1, le=MAX_LIMIT),
                       unread: bool = Query(False, description="only unread ones"),
                       caller: Caller = Depends(reader),
                       ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """A page of the caller's notifications, newest first, with the counts."""
    inbox = Inbox(ctx.store, ctx.clock)
    try:
        page = inbox.page(caller.name, cursor, limit, unread)
    except InputError as exc:
        field, _, detail = str(exc).partition(": ")
        raise Problem(400, "Invalid request", detail, field=field) from exc
    return {"items": [item.to_dict() for item in page.items], "next_cursor": page.next_cursor,
            "counts": _counts(inbox, caller.name)}


@router.get("/notifications/counts")
def notification_counts(caller: Caller = Depends(reader),
                        ctx: ApiContext = Depends(context)) -> dict[str, int]:
    """How many notifications the caller has, and how many are unread."""
    return _counts(Inbox(ctx.store, ctx.clock), caller.name)


def _mark(ctx: ApiContext, caller: Caller, ids: list[int], read: bool) -> dict[str, Any]:
    inbox = Inbox(ctx.store, ctx.clock)
    missing = inbox.mark(caller.name, ids, read)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise Problem(404, "No such notification",
                      f"you have no notification {shown}; nothing was marked", field="ids")
    return {"counts": _counts(inbox, caller.name)}


@router.post("/notifications/read")
def mark_read(body: Ids, caller: Caller = Depends(writer),
              ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Mark notifications read; answers the new counts."""
    return _mark(ctx, caller, body.ids, True)


@router.post("/notifications/unread")
def mark_unread(body: Ids, caller: Caller = Depends(writer),
                ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Mark notifications unread; answers the new counts."""
    return _mark(ctx, caller, body.ids, False)


@router.post("/notifications/read-all")
def mark_all_read(body: UpTo, caller: Caller = Depends(writer),
                  ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Mark every notification up to ``up_to`` read (not those that came after it)."""
    inbox = Inbox(ctx.store, ctx.clock)
    marked = inbox.mark_all_read(caller.name, body.up_to)
    return {"marked": marked, "counts": _counts(inbox, caller.name)}


@router.get("/notifications/{notification_id}/why")
def why(notification_id: int, caller: Caller = Depends(reader),
        ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Why the caller got this notification: each rule that matched, and what matched.

    ``reason`` is what the matcher found when the message came (the package
    owned, the user followed, the topic pattern); ``rule`` is the rule as it is
    now (null when it has been deleted since), with whether it is muted or snoozed.
    """
    item = Inbox(ctx.store, ctx.clock).get(caller.name, notification_id)
    if item is None:
        raise Problem(404, "No such notification",
                      f"you have no notification {notification_id}")
    now = ctx.clock()
    mutes = Mutes(ctx.store, ctx.clock)
    rules = []
    for name in item.rules:
        state = mutes.find(caller.name, name)
        rules.append({"name": name, "reason": (item.why or {}).get(name),
                      "rule": None if state is None else _rule(state, now)})
    return {"id": item.id, "msg_id": item.msg_id, "title": item.title, "topic": item.topic,
            "app": item.app, "rules": rules}


def _rule(state: RuleState, now: float) -> dict[str, Any]:
    document = state.document
    return {**state.to_dict(now), "track": document.get("track"),
            "destinations": document.get("destinations")}


def apply_changes(ctx: ApiContext) -> None:
    """Have the running service apply the change log now (else it does within a second)."""
    try:
        ctx.changed()
    except StorageError as exc:  # the switch is stored: the watcher's next poll applies it
        log.warning("a rule switch is stored, and applies at the next poll: %s", exc)


def _switched(ctx: ApiContext, state: RuleState | None, name: str) -> dict[str, Any]:
    if state is None:
        raise Problem(404, "No such rule", f"you have no rule named {name!r}")
    apply_changes(ctx)
    return _rule(state, ctx.clock())


def _own(ctx: ApiContext, caller: Caller, name: str) -> RuleState:
    state = Mutes(ctx.store, ctx.clock).find(caller.name, name)
    if state is None:
        raise Problem(404, "No such rule", f"you have no rule named {name!r}")
    return state


@router.post("/rules/{name}/mute")
def mute_rule(name: str, caller: Caller = Depends(writer),
              ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Mute one of the caller's rules: it sends nothing until unmuted."""
    found = _own(ctx, caller, name)
    return _switched(ctx, Mutes(ctx.store, ctx.clock).mute(found.id, caller.name), name)


@router.post("/rules/{name}/snooze")
def snooze_rule(name: str, body: Snooze, caller: Caller = Depends(writer),
                ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Snooze one of the caller's rules for a while: it sends nothing until then."""
    try:
        seconds = parse_duration(body.duration.strip())
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), field="for") from exc
    if not 0 < seconds <= MAX_SNOOZE:
        raise Problem(422, "Invalid request", "a snooze lasts from a second to a year; "
                      "to stop a rule for longer, mute it", field="for")
    found = _own(ctx, caller, name)
    return _switched(ctx, Mutes(ctx.store, ctx.clock).snooze(found.id, seconds, caller.name),
                     name)


@router.post("/rules/{name}/unmute")
def unmute_rule(name: str, caller: Caller = Depends(writer),
                ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Unmute one of the caller's rules, or end its snooze."""
    found = _own(ctx, caller, name)
    return _switched(ctx, Mutes(ctx.store, ctx.clock).unmute(found.id, caller.name), name)
