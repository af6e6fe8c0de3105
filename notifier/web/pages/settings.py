"""The person's own settings: quiet hours.

==================================  ================================================
``GET /settings``                   the quiet hours form
``POST /settings/quiet-hours``      ``start``, ``end`` (HH:MM), ``timezone``: saved
``POST /settings/quiet-hours/off``  no quiet hours any more
==================================  ================================================

The work is the API's (:mod:`notifier.web.api.quiet`); each problem is shown
next to the field it names. The time zone field offers every zone the
server knows, as suggestions of a plain text field; ``/static/web/timezone.js``
fills it with the browser's zone when it is empty.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from ...users.quiet import QuietHours
from ..api import quiet as api
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import PageError, Posted, field_errors, posted, redirect, render, signed_in

router = APIRouter(include_in_schema=False)

#: the script that fills in the browser's time zone
TIMEZONE_SCRIPT = "/static/web/timezone.js"
#: an API problem's field -> the form's field
QUIET_FIELDS = {"start": "quiet-start", "end": "quiet-end", "timezone": "quiet-timezone"}


def _status(quiet: dict[str, Any] | None, now: float) -> str:
    """A sentence saying whether it is quiet now."""
    if not quiet:
        return "You have no quiet hours: everything is sent when it comes."
    try:
        hours = QuietHours.parse(quiet)
    except Exception:  # a stored setting that no longer parses: the form says what to fix
        return "Your quiet hours cannot be used; save them again."
    if hours.active(now):
        return f"It is quiet now, until {quiet['end']} ({quiet['timezone']})."
    return f"Quiet from {quiet['start']} to {quiet['end']} ({quiet['timezone']})."


def _page(request: Request, ctx: ApiContext, caller: Caller, *, status: int = 200,
          errors: dict[str, list[str]] | None = None,
          values: dict[str, str] | None = None) -> Response:
    stored = api.get_quiet_hours(caller, ctx)
    if values is None:
        values = {key: str(value) for key, value in (stored or {}).items()}
    return render(request, ctx, "settings.html", caller, status=status, errors=errors or {},
                  quiet=values, has_quiet=bool(stored), status_text=_status(stored, ctx.clock()),
                  zones=sorted(zoneinfo.available_timezones()))


@router.get("/settings")
def settings_page(request: Request, caller: Caller = Depends(signed_in),
                  ctx: ApiContext = Depends(context)) -> Response:
    return _page(request, ctx, caller)


@router.post("/settings/quiet-hours")
def save_quiet_hours(request: Request, form: Posted = Depends(posted),
                     ctx: ApiContext = Depends(context)) -> Response:
    values = {key: form.get(key).strip() for key in ("start", "end", "timezone")}
    try:
        api.put_quiet_hours(values, form.caller, ctx)
    except Problem as exc:
        if exc.status == 404:
            raise PageError(404, exc.title, exc.detail or "") from exc
        errors = field_errors(exc.errors or [{"field": "", "detail": exc.detail or exc.title}],
                              QUIET_FIELDS)
        return _page(request, ctx, form.caller, status=exc.status, errors=errors,
                     values=values)
    return redirect(ctx, "/settings", "Your quiet hours are saved.")


@router.post("/settings/quiet-hours/off")
def quiet_hours_off(form: Posted = Depends(posted),
                    ctx: ApiContext = Depends(context)) -> Response:
    try:
        api.delete_quiet_hours(form.caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return redirect(ctx, "/settings", "You have no quiet hours now.")
