"""For admins (``[web] admins``): every user, and anyone's rules, to disable and enable.

================================  ==================================================
``GET /admin/users``              every user: name, emails, IRC nicks, groups
``GET /admin/rules?user=``        every rule (or one user's), with its id
``POST /admin/rules/{id}/disable`` the rule sends nothing until enabled
``POST /admin/rules/{id}/enable``  the rule sends again (ends a snooze too)
================================  ==================================================

Rules are addressed by id here, since a name is only unique per user.
Reading needs an admin with any credentials; disabling and enabling, an
admin who may write (a session, or a ``write`` token). A switch is the one
a user's mute is (:mod:`notifier.storage.mutes`), and the running service
applies it before the answer goes back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from ...storage.mutes import Mutes, RuleState
from .auth import Caller, admin, admin_writer
from .context import ApiContext, context
from .inbox import apply_changes
from .problems import Problem

router = APIRouter(tags=["admin"])


def _shown(state: RuleState, now: float) -> dict[str, Any]:
    return {**state.to_dict(now), "rule": state.document}


@router.get("/admin/users")
def list_users(caller: Caller = Depends(admin),
               ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every user, by name (never their feed tokens)."""
    return [{"name": u["name"], "emails": u["emails"], "ircnicks": u["ircnicks"],
             "groups": u["groups"]} for u in ctx.store.list_users()]


@router.get("/admin/rules")
def list_rules(user: str | None = Query(None, description="only this user's rules"),
               caller: Caller = Depends(admin),
               ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every rule (or ``user``'s), by user then name, with its id and switches."""
    now = ctx.clock()
    return [_shown(state, now) for state in Mutes(ctx.store, ctx.clock).list(user)]


def _switch(ctx: ApiContext, rule_id: int, disable: bool) -> dict[str, Any]:
    mutes = Mutes(ctx.store, ctx.clock)
    state = mutes.mute(rule_id) if disable else mutes.unmute(rule_id)
    if state is None:
        raise Problem(404, "No such rule", f"there is no rule {rule_id}")
    apply_changes(ctx)
    return _shown(state, ctx.clock())


@router.post("/admin/rules/{rule_id}/disable")
def disable_rule(rule_id: int, caller: Caller = Depends(admin_writer),
                 ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Disable anyone's rule."""
    return _switch(ctx, rule_id, True)


@router.post("/admin/rules/{rule_id}/enable")
def enable_rule(rule_id: int, caller: Caller = Depends(admin_writer),
                ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Enable anyone's rule (ending a snooze too)."""
    return _switch(ctx, rule_id, False)
