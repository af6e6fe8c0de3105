"""The caller's rules: the list with 7-day counts; enable, disable and delete.

========================  ===================================================
``GET /rules``            every rule, with what it sent in the last 7 days
``POST /rules/switch``    ``rule``, ``action``: ``enable`` or ``disable``
``POST /rules/delete``    ``rule``: deleted
========================  ===================================================

Disabling is muting (:mod:`notifier.storage.mutes`), enabling unmutes and
ends a snooze, as the API's mute and unmute do; the editor is :mod:`.editor`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from ...rules.model import TRACK_FIELDS
from ..api import inbox as api_inbox
from ..api import rules as api_rules
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import PageError, Posted, posted, redirect, render, signed_in

router = APIRouter(include_in_schema=False)

#: what each kind of rule tracks, as the pages say it (artifacts: packages, containers,
#: modules and flatpaks alike)
KIND_LABELS = {
    "artifacts-owned": "Packages these users own (and containers, modules, flatpaks; "
                       "leave empty for your own)",
    "artifacts-group-owned": "Packages these groups own (and containers, modules, flatpaks)",
    "artifacts-followed": "These packages (or containers/NAME, modules/NAME, flatpaks/NAME)",
    "related-events": "Events that involve you (takes no list)",
    "users-followed": "What these users do",
    "topics": "Messages whose topic matches these patterns",
}


def summary(rule: dict[str, Any]) -> str:
    """What a rule tracks, in a line."""
    track = rule.get("track") or {}
    kind = str(track.get("kind", ""))
    field = TRACK_FIELDS.get(kind)
    targets = track.get(field, []) if field else []
    label = KIND_LABELS.get(kind, kind).split(" (")[0]
    return f"{label}: {', '.join(targets)}" if targets else label


@router.get("/rules")
def rules_page(request: Request, caller: Caller = Depends(signed_in),
               ctx: ApiContext = Depends(context)) -> Response:
    rules = api_rules.list_rules(caller, ctx)
    now = ctx.clock()
    for rule in rules:
        until = rule.get("snoozed_until")
        rule["snoozed"] = until if isinstance(until, int | float) and until > now else None
        rule["summary"] = summary(rule)
    return render(request, ctx, "rules.html", caller, rules=rules)


def _problem(exc: Problem) -> PageError:
    return PageError(exc.status, exc.title, exc.detail or "")


@router.post("/rules/switch")
def switch(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    name, action = form.get("rule"), form.get("action")
    try:
        if action == "disable":
            api_inbox.mute_rule(name, form.caller, ctx)
            note = f"Rule {name!r} is disabled."
        elif action == "enable":
            api_inbox.unmute_rule(name, form.caller, ctx)
            note = f"Rule {name!r} is enabled."
        else:
            raise PageError(400, "Bad form", "the action is enable or disable")
    except Problem as exc:
        raise _problem(exc) from exc
    return redirect(ctx, "/rules", note)


@router.post("/rules/delete")
def delete(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    name = form.get("rule")
    try:
        api_rules.delete_rule(name, form.caller, ctx)
    except Problem as exc:
        raise _problem(exc) from exc
    return redirect(ctx, "/rules", f"Rule {name!r} is deleted.")
