"""``POST /rule-preview``: the stored messages a rule would have sent.

The body is ``{"rule": {...}, "since": "7d", "limit": 50}``. The rule is the
one ``POST /rules`` takes, checked by the same validation (its ``name`` and
``destinations`` may be left out here), always as the caller's and as if it
were enabled. The answer lists the newest matches, newest first, with their
summary and link, and ``total``: how many match in all, counted up to
:data:`~notifier.rules.preview.COUNT_BOUND` (``total_exact`` false past it).
The history's index (:mod:`notifier.rules.preview`) keeps this fast over a
million stored messages.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from ...config import parse_duration
from ...rules.preview import COUNT_BOUND, RulePreview
from ...rules.validation import rule_problems
from .auth import Caller, reader
from .context import ApiContext, context
from .problems import invalid

router = APIRouter(tags=["preview"])

#: the longest window a preview looks back over
MAX_SINCE = 366 * 86400
MAX_LIMIT = 200
EXAMPLE = {"rule": {"track": {"kind": "artifacts-followed", "packages": ["kernel"]},
                    "filters": {"severities": ["warning", "error"]}},
           "since": "7d", "limit": 50}
_lock = threading.Lock()


def previewer(request: Request, ctx: ApiContext) -> RulePreview:
    """The app's :class:`RulePreview`, made on first use (building a describer takes a while)."""
    found = getattr(request.app.state, "rule_preview", None)
    if found is None:
        with _lock:
            found = getattr(request.app.state, "rule_preview", None)
            if found is None:
                found = RulePreview.for_config(ctx.store, ctx.config)
                request.app.state.rule_preview = found
    return found


def _window(body: dict[str, Any]) -> tuple[int, int]:
    errors = []
    since, limit = body.get("since", "7d"), body.get("limit", 50)
    seconds = 0
    if not isinstance(since, str):
        errors.append({"field": "since", "detail": "a duration such as '7d' or '12h'"})
    else:
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            errors.append({"field": "since", "detail": str(exc)})
        else:
            if not 0 < seconds <= MAX_SINCE:
                errors.append({"field": "since", "detail": "at most 366d"})
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        errors.append({"field": "limit", "detail": f"an integer from 1 to {MAX_LIMIT}"})
    unknown = sorted(set(body) - {"rule", "since", "limit"})
    errors += [{"field": key, "detail": "unknown key; expected rule, since, limit"}
               for key in unknown]
    if errors:
        raise invalid(errors)
    return seconds, limit


@router.post("/rule-preview")
def rule_preview(request: Request, body: Any = Body(examples=[EXAMPLE]),
                 caller: Caller = Depends(reader),
                 ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The stored messages the rule would have sent since ``since``, newest first."""
    if not isinstance(body, dict):
        raise invalid([{"field": "body", "detail": "expected {\"rule\", \"since\", \"limit\"}"}])
    seconds, limit = _window(body)
    data = body.get("rule")
    if not isinstance(data, dict):
        raise invalid([{"field": "rule", "detail": "a rule is a JSON object"}])
    data = {"name": "preview", "destinations": ["rss"], **data, "user": caller.name,
            "disabled": False}
    rule, problems = rule_problems(data)
    if rule is None:
        raise invalid([{"field": f"rule.{field}", "detail": message}
                       for field, message in problems])
    since = ctx.clock() - seconds
    found = previewer(request, ctx).preview(rule, since, limit=limit)
    return {"since": since, "total": found.total, "total_exact": found.total_exact,
            "count_bound": COUNT_BOUND, "messages": [m.to_dict() for m in found.matches]}
