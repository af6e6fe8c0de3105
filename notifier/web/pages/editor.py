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
the kind tracks). Each kind that tracks a list has its own field
(:data:`TARGET_FIELDS`); without JavaScript they are all shown, and only the
chosen kind's is read. Lists are typed one per line, or separated by commas.
The preview button sends the same form to the API's preview
(:mod:`notifier.web.api.preview`) and changes nothing.

``templates/web/static/editor.js`` (served at ``/static/web/editor.js``) adds
the live parts: only the chosen kind's field is shown, the preview follows
the form as the person types (through ``POST /api/v1/rule-preview``), and the
package, user, group and application fields complete names from the API's
look-ups (:mod:`notifier.web.api.lookups`).
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

#: where the editor's script is served
SCRIPT = "/static/web/editor.js"

#: each list's field in the editor: label, hint, and the look-up that completes its names
TARGETS = {
    "artifacts-owned": {
        "field": "owners", "label": "Whose packages", "lookup": "users",
        "hint": "For “packages these users own”: user names, separated by commas. "
                "Empty: your own packages."},
    "artifacts-group-owned": {
        "field": "groups", "label": "Groups", "lookup": "groups",
        "hint": "For “packages these groups own”: group names, separated by commas."},
    "artifacts-followed": {
        "field": "packages", "label": "Packages", "lookup": "packages",
        "hint": "For “these packages”: package names, separated by commas; "
                "containers/NAME, modules/NAME or flatpaks/NAME for the other kinds."},
    "users-followed": {
        "field": "people", "label": "People", "lookup": "users",
        "hint": "For “what these users do”: user names, separated by commas."},
    "topics": {
        "field": "patterns", "label": "Topic patterns", "lookup": None,
        "hint": "For “messages whose topic matches”: one pattern per line, such as "
                "*.bodhi.update.*"},
}
#: track kind -> the form field holding its list (a kind missing takes no list)
TARGET_FIELDS = {kind: str(target["field"]) for kind, target in TARGETS.items()}
#: the form fields of lists typed on one line (the topic patterns get lines of their own)
ONE_LINE = frozenset({"owners", "groups", "packages", "people", "applications",
                      "excluded_applications"})
#: a problem's field path (or its first part) -> the form field it is shown next to
FIELDS = {
    "name": "name", "track.kind": "kind", "track": "kind",
    **{f"track.{f}": "kind" for f in TRACK_FIELDS.values() if f},
    "filters.applications": "applications",
    "filters.excluded_applications": "excluded_applications",
    "filters.severities": "severities", "filters.my_actions": "my_actions",
    "filters.topic": "topic",
    "destinations": "destinations", "disabled": "enabled",
}


def fields_for(kind: str) -> dict[str, str]:
    """:data:`FIELDS`, with the list of ``kind`` shown next to its own form field."""
    field, target = TRACK_FIELDS.get(kind), TARGET_FIELDS.get(kind)
    if field is None or target is None:
        return FIELDS
    return {**FIELDS, f"track.{field}": target}


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
    field, target = TRACK_FIELDS.get(kind), TARGET_FIELDS.get(kind)
    targets = split(form.get(target)) if target else []
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


def joined(field: str, names: list[str]) -> str:
    """A list as its form field shows it: on one line, or a line each."""
    return (", " if field in ONE_LINE else "\n").join(names)


def form_values(rule: dict[str, Any]) -> dict[str, Any]:
    """What the editor's fields show for ``rule`` (its JSON form)."""
    track = rule.get("track") or {}
    filters = rule.get("filters") or {}
    kind = str(track.get("kind", ""))
    field, target = TRACK_FIELDS.get(kind), TARGET_FIELDS.get(kind)
    lists = {name: "" for name in TARGET_FIELDS.values()}
    if field and target:
        lists[target] = joined(target, track.get(field) or [])
    return {
        "name": rule.get("name", ""), "kind": kind, **lists,
        "applications": joined("applications", filters.get("applications") or []),
        "excluded_applications": joined("excluded_applications",
                                        filters.get("excluded_applications") or []),
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
                  windows=WINDOWS, kinds=TRACK_KINDS, targets=TARGETS,
                  track_fields=TRACK_FIELDS,
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


def _as_typed(form: Posted, data: dict[str, Any]) -> dict[str, Any]:
    """The form shown again: the rule's values, with every kind's list as it was typed
    (the person may come back to a kind they left)."""
    return {**form_values(data), **{t: form.get(t) for t in TARGET_FIELDS.values()}}


def _refused(request: Request, ctx: ApiContext, form: Posted, data: dict[str, Any],
             exc: Problem, editing: str | None) -> Response:
    if exc.status == 404:
        raise PageError(404, exc.title, exc.detail or "") from exc
    errors = field_errors(exc.errors or [{"field": "", "detail": exc.detail or exc.title}],
                          fields_for(str(data["track"]["kind"])))
    return _editor(request, ctx, form.caller, _as_typed(form, data), editing=editing,
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
        return _editor(request, ctx, form.caller, _as_typed(form, data), editing=editing,
                       errors=field_errors(errors, fields_for(str(data["track"]["kind"]))),
                       status=exc.status, since=since)
    return _editor(request, ctx, form.caller, _as_typed(form, data), editing=editing,
                   preview=found, since=since)


