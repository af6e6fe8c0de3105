"""The caller's quiet hours (``/delivery/quiet-hours``).

=================================  ============================================
``GET /delivery/quiet-hours``      the setting, or null for none
``PUT /delivery/quiet-hours``      ``{"start": "22:00", "end": "07:00",
                                   "timezone": "Europe/Prague"}``
``DELETE /delivery/quiet-hours``   none any more
=================================  ============================================

The same setting is ``quiet_hours`` of ``GET``/``PUT /delivery`` (see
:mod:`.destinations`); checked as ``notifier users import`` checks it, each
problem naming its field. During quiet hours what would interrupt the caller
(email, IRC, Web Push, desktop notifications) is held, and sent as one
digest per destination when they end; errors go at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from ...storage.destinations import Destinations
from ...users.quiet import check_quiet_hours
from ...users.settings import QUIET_HOURS
from .auth import Caller, reader, writer
from .context import ApiContext, context
from .problems import Problem, invalid

router = APIRouter(tags=["destinations"])

QUIET_EXAMPLE = {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}


def quiet_problems(data: Any) -> list[dict[str, str]]:
    """Each problem of a ``quiet_hours`` value as ``{"field", "detail"}`` (fields such as
    ``timezone``; ``body`` for the whole)."""
    errors: list[dict[str, str]] = []
    check_quiet_hours(data, "", lambda path, message: errors.append(
        {"field": path or "body", "detail": message}))
    return errors


def _store(ctx: ApiContext) -> Destinations:
    return Destinations(ctx.store, clock=ctx.clock)


@router.get("/delivery/quiet-hours")
def get_quiet_hours(caller: Caller = Depends(reader),
                    ctx: ApiContext = Depends(context)) -> dict[str, Any] | None:
    """The caller's quiet hours, or null when they have none."""
    delivery = _store(ctx).delivery(caller.name)
    return delivery.get(QUIET_HOURS) if isinstance(delivery, dict) else None


@router.put("/delivery/quiet-hours")
def put_quiet_hours(data: Any = Body(examples=[QUIET_EXAMPLE]),
                    caller: Caller = Depends(writer),
                    ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Set the caller's quiet hours; the other delivery settings stay."""
    errors = quiet_problems(data) if data is not None else [
        {"field": "body", "detail": "send an object; DELETE removes the quiet hours"}]
    if errors:
        raise invalid(errors)
    quiet = {key: data[key].strip() for key in ("start", "end", "timezone")}
    _save(ctx, caller, quiet)
    return quiet


@router.delete("/delivery/quiet-hours", status_code=204)
def delete_quiet_hours(caller: Caller = Depends(writer),
                       ctx: ApiContext = Depends(context)) -> Response:
    """The caller has no quiet hours any more (done already is no error)."""
    _save(ctx, caller, None)
    return Response(status_code=204)


def _save(ctx: ApiContext, caller: Caller, quiet: dict[str, str] | None) -> None:
    store = _store(ctx)
    delivery = store.delivery(caller.name)
    delivery = dict(delivery) if isinstance(delivery, dict) else {}
    if quiet is None:
        delivery.pop(QUIET_HOURS, None)
    else:
        delivery[QUIET_HOURS] = quiet
    if not store.set_delivery(caller.name, delivery or None):
        raise Problem(404, "No such user", f"{caller.name!r} has no user record")
    ctx.changed()
