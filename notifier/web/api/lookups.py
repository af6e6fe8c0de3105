"""Look-ups for the rule editor: applications seen, packages, users and groups by prefix.

``GET /lookups/applications`` lists the applications of the stored messages;
``/lookups/packages``, ``/lookups/users`` and ``/lookups/groups`` take
``?prefix=`` (case-sensitive, may be empty) and return at most ``limit``
(default 20) sorted names, from the history's index and from the package
owners and users notifier knows. ``/lookups/packages`` finds every kind of
artifact by its key (:mod:`notifier.users.artifacts`): packages by name,
containers, modules and flatpaks as ``containers/NAME``, ``modules/NAME``,
``flatpaks/NAME`` (so ``?prefix=containers/`` lists the containers).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ...storage.history_index import HistoryIndex
from .auth import Caller, reader
from .context import ApiContext, context

router = APIRouter(tags=["lookups"])

Prefix = Query("", max_length=255, description="What the names start with (case-sensitive).")
Limit = Query(20, ge=1, le=100, description="At most this many names.")


@router.get("/lookups/applications")
def applications(caller: Caller = Depends(reader),
                 ctx: ApiContext = Depends(context)) -> list[str]:
    """The applications of the stored messages, lower case, sorted."""
    return HistoryIndex(ctx.store).applications()


@router.get("/lookups/packages")
def packages(prefix: str = Prefix, limit: int = Limit, caller: Caller = Depends(reader),
             ctx: ApiContext = Depends(context)) -> list[str]:
    """Packages (and containers/NAME, modules/NAME, flatpaks/NAME) starting with ``prefix``:
    seen in the history, or with owners."""
    return HistoryIndex(ctx.store).packages(prefix, limit)


@router.get("/lookups/users")
def users(prefix: str = Prefix, limit: int = Limit, caller: Caller = Depends(reader),
          ctx: ApiContext = Depends(context)) -> list[str]:
    """User names starting with ``prefix``: seen in the history, owners, notifier's users."""
    return HistoryIndex(ctx.store).users(prefix, limit)


@router.get("/lookups/groups")
def groups(prefix: str = Prefix, limit: int = Limit, caller: Caller = Depends(reader),
           ctx: ApiContext = Depends(context)) -> list[str]:
    """Group names starting with ``prefix``: seen in the history, or owning packages."""
    return HistoryIndex(ctx.store).groups(prefix, limit)
