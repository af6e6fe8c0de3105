"""The rule editor: one form for every kind of tracking and every filter.

======================================  =============================================
``GET /rules/new``, ``POST /rules/new``  a new rule
``GET /rules/edit?rule=NAME``            one of the caller's rules in the form
``POST /rules/edit``                     ``rule`` (its name) and the form: replaced
``POST /rules/preview``                  the form again, with the stored messages the
                                         rule would have sent since ``since``
======================================  =============================================

The form becomes the rule's JSON (:func:`rule_from_form`) and goes to the
API's own create and replace (:mod:`notifier.web.api.rules`), which check it
with :mod:`notifier.rules.validation`; each problem is shown next to the
form field its path names (``track.users[0]`` next to the list of what to
track). Lists are typed one per line, or separated by commas. The preview
button sends the same form to the API's preview (:mod:`notifier.web.api.preview`)
and changes nothing; the page keeps a place for it (``#preview``) that
JavaScript can fill as the person types.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from ...rules.model import SEVERITIES, TRACK_FIELDS, TRACK_KINDS
from ...rules.validation import backend_names
from ..api import preview as api_preview
from ..api import rules as api_rules
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import PageError, Posted, field_errors, posted, redirect, render, signed_in
from .rules import KIND_LABELS

router = APIRouter(include_in_schema=False)

#: a problem's field path (or its first part) -> the form field it is shown next to
FIELDS = {
    "name": "name", "track.kind": "kind", "track": "kind",
    **{f"track.{f}": "targets" for f in TRACK_FIELDS.values() if f},
    "filters.applications": "applications",
    "filters.excluded_applications": "excluded_applications",
    "filters.severities": "severities", "filters.my_actions": "my_actions",
    "filters.topic": "topic",
    "destinations": "destinations", "disabled": "enabled",
}

_SPLIT = re.compile(r"[\n,]")
#: the windows a preview offers: (since, label)
WINDOWS = (("1d", "day"), ("7d", "7 days"), ("30d", "30 days"))
#: messages a preview shows
PREVIEW_LIMIT = 20


def split(text: str) -> list[str]:
    """A list typed one per line or separated by commas."""
    return [part.strip() for part in _SPLIT.split(text) if part.strip()]


def rule_from_form(form: Posted, name: str | None = None) -> dict[str, Any]:
    """The rule's JSON form from the editor's fields (the API checks it)."""
    kind = form.get("kind")
    track: dict[str, Any] = {"kind": kind}
    field = TRACK_FIELDS.get(kind)
    targets = split(form.get("targets"))
    if field is not None and targets:
        track[field] = targets
    topic = form.get("topic").strip()
    return {
        "name": (name if name is not None else form.get("name")).strip(),
        "disabled": form.get("enabled") != "on",
        "track": track,
        "filters": {
            "applications": split(form.get("applications")),
            "excluded_applications": split(form.get("excluded_applications")),
            "severities": [s for s in form.form.getlist("severities") if isinstance(s, str)],
            "my_actions": form.get("my_actions") == "on",
            "topic": topic or None,
        },
        "destinations": [d for d in form.form.getlist("destinations") if isinstance(d, str)],
    }


def form_values(rule: dict[str, Any]) -> dict[str, Any]:
    """What the editor's fields show for ``rule`` (its JSON form)."""
    track = rule.get("track") or {}
    filters = rule.get("filters") or {}
    field = TRACK_FIELDS.get(str(track.get("kind")))
    return {
        "name": rule.get("name", ""), "kind": track.get("kind", ""),
        "targets": "\n".join(track.get(field) or []) if field else "",
        "applications": "\n".join(filters.get("applications") or []),
        "excluded_applications": "\n".join(filters.get("excluded_applications") or []),
        "severities": list(filters.get("severities") or []),
        "my_actions": bool(filters.get("my_actions")), "topic": filters.get("topic") or "",
        "destinations": list(rule.get("destinations") or []),
        "enabled": not rule.get("disabled"),
    }


@cache
def destination_names() -> tuple[str, ...]:
    """The installed backends' names (found once: scanning entry points takes a while)."""
    return tuple(backend_names())


NEW_RULE = {"track": {"kind": "artifacts-owned"},
            "filters": {"severities": ["info", "warning", "error"]}, "destinations": []}


def _editor(request: Request, ctx: ApiContext, caller: Caller, values: dict[str, Any], *,
            editing: str | None, errors: dict[str, list[str]] | None = None,
            status: int = 200, preview: dict[str, Any] | None = None,
            since: str = "7d") -> Response:
    return render(request, ctx, "rule_edit.html", caller, status=status, values=values,
                  editing=editing, errors=errors or {}, preview=preview, since=since,
                  windows=WINDOWS, kinds=TRACK_KINDS,
                  kind_labels=KIND_LABELS, severities=SEVERITIES,
                  destinations=sorted(set(destination_names()) | set(values["destinations"])))


@router.get("/rules/new")
def new_page(request: Request, caller: Caller = Depends(signed_in),
             ctx: ApiContext = Depends(context)) -> Response:
    return _editor(request, ctx, caller, form_values(NEW_RULE), editing=None)


@router.get("/rules/edit")
def edit_page(request: Request, rule: str, caller: Caller = Depends(signed_in),
              ctx: ApiContext = Depends(context)) -> Response:
    found = ctx.store.get_rule(caller.name, rule)  # as the API reads it, without counts
    if found is None:
        raise PageError(404, "No such rule", f"you have no rule named {rule!r}")
    return _editor(request, ctx, caller, form_values(found), editing=rule)


def _refused(request: Request, ctx: ApiContext, form: Posted, data: dict[str, Any],
             exc: Problem, editing: str | None) -> Response:
    if exc.status == 404:
        raise PageError(404, exc.title, exc.detail or "") from exc
    errors = field_errors(exc.errors or [{"field": "", "detail": exc.detail or exc.title}],
                          FIELDS)
    return _editor(request, ctx, form.caller, form_values(data), editing=editing,
                   errors=errors, status=exc.status)


@router.post("/rules/new")
def create(request: Request, form: Posted = Depends(posted),
           ctx: ApiContext = Depends(context)) -> Response:
    data = rule_from_form(form)
    try:
        api_rules.create_rule(Response(), data, form.caller, ctx)
    except Problem as exc:
        return _refused(request, ctx, form, data, exc, None)
    return redirect(ctx, "/rules", f"Rule {data['name']!r} is saved.")


@router.post("/rules/edit")
def replace(request: Request, form: Posted = Depends(posted),
            ctx: ApiContext = Depends(context)) -> Response:
    name = form.get("rule")
    data = rule_from_form(form, name)
    before = ctx.store.get_rule(form.caller.name, name) or {}
    if before.get("snoozed_until") is not None:  # a snooze outlives an edit
        data["snoozed_until"] = before["snoozed_until"]
    try:
        api_rules.replace_rule(name, data, form.caller, ctx)
    except Problem as exc:
        return _refused(request, ctx, form, data, exc, name)
    return redirect(ctx, "/rules", f"Rule {name!r} is saved.")


@router.post("/rules/preview")
def preview(request: Request, form: Posted = Depends(posted),
            ctx: ApiContext = Depends(context)) -> Response:
    """What the rule in the form would have sent: nothing is saved."""
    editing = form.get("rule") or None
    data = rule_from_form(form, editing)
    since = form.get("since") if form.get("since") in dict(WINDOWS) else "7d"
    body = {"rule": {"track": data["track"], "filters": data["filters"]}, "since": since,
            "limit": PREVIEW_LIMIT}
    try:
        found = api_preview.rule_preview(request, body, form.caller, ctx)
    except Problem as exc:
        errors = [{**e, "field": str(e.get("field") or "").removeprefix("rule.")}
                  for e in exc.errors]
        return _editor(request, ctx, form.caller, form_values(data), editing=editing,
                       errors=field_errors(errors, FIELDS), status=exc.status, since=since)
    return _editor(request, ctx, form.caller, form_values(data), editing=editing,
                   preview=found, since=since)
