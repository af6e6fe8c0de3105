"""The JSON API under ``/api/v1``, with sign-in, tokens and problem+json errors.

One module per resource, each with its own ``router``:

===================  ====================================================
:mod:`.me`           ``GET /users/me``
:mod:`.account`      ``POST /signin/email``, ``POST /signout``
:mod:`.tokens`       personal access tokens
:mod:`.rules`        the caller's rules, with 7-day counts
:mod:`.preview`      ``POST /rule-preview``
:mod:`.lookups`      applications seen; artifacts, users and groups by prefix
:mod:`.destinations` addresses, their verification, delivery settings
:mod:`.quiet`        the caller's quiet hours
:mod:`.inbox`        notifications, read state, why, mute and snooze
:mod:`.admin`        users and everyone's rules, for admins
:mod:`.push`         the VAPID key; the caller's Web Push subscriptions
===================  ====================================================

Who may call what is in :mod:`.auth`; the errors' form is in :mod:`.problems`.
The schema is served at ``/api/v1/openapi.json`` and the docs page at
``/api/v1/docs``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from . import (
    account,
    admin,
    destinations,
    inbox,
    lookups,
    me,
    preview,
    push,
    quiet,
    rules,
    tokens,
)
from .auth import limit_address
from .context import ApiContext, context
from .problems import Problem

PREFIX = "/api/v1"

__all__ = ["PREFIX", "ApiContext", "Problem", "context", "create_router"]


def create_router() -> APIRouter:
    """Every route of the API, to be included under :data:`PREFIX`."""
    router = APIRouter(dependencies=[Depends(limit_address)])
    for module in (me, account, tokens, rules, preview, lookups, destinations, quiet, inbox,
                   admin, push):
        router.include_router(module.router)
    return router
