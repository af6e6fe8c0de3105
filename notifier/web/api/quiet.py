"""The caller's quiet hours (``/delivery/quiet-hours``).

=================================  ============================================
``GET /delivery/quiet-hours``      the setting, or null for none
``PUT /delivery/quiet-hours``      ``{"start": "22:00", "end": "07:00",
                                   "timezone": "Europe/Prague"}``, or null
=================================  ============================================

The same setting is ``quiet_hours`` of ``GET``/``PUT /delivery`` (see
:mod:`.destinations`); checked as ``notifier users import`` checks it, each
problem naming its field. During quiet hours what would interrupt the caller
(email, IRC, Web Push, desktop notifications) is held, and sent as one
digest per destination when they end; errors go at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

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
def put_quiet_hours(data: Any = Body(None, examples=[QUIET_EXAMPLE]),
                    caller: Caller = Depends(writer),
                    ctx: ApiContext = Depends(context)) -> dict[str, Any] | None:
    """Set the caller's quiet hours (null: none); the other delivery settings stay."""
    errors = quiet_problems(data)
    if errors:
        raise invalid(errors)
    store = _store(ctx)
    delivery = store.delivery(caller.name)
    delivery = dict(delivery) if isinstance(delivery, dict) else {}
    if data is None:
        delivery.pop(QUIET_HOURS, None)
    else:
        delivery[QUIET_HOURS] = {key: data[key].strip() for key in ("start", "end", "timezone")}
    if not store.set_delivery(caller.name, delivery or None):
        raise Problem(404, "No such user", f"{caller.name!r} has no user record")
    ctx.changed()
    return delivery.get(QUIET_HOURS)
