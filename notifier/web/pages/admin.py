"""For admins (``[web] admins``): every user, and everyone's rules to disable and enable.

=========================  ====================================================
``GET /admin``             users, and every rule (``?user=`` for one user's), 200 a
                           page (``?page=``)
``POST /admin/switch``     ``id``, ``action`` (``disable`` or ``enable``)
=========================  ====================================================

Anyone else gets 403. The work is the API's (:mod:`notifier.web.api.admin`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from ..api import admin as api
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import PageError, Posted, admin_only, posted, query, redirect, render
from .rules import summary

router = APIRouter(include_in_schema=False)


#: rules on one page of the admin's list
PAGE_SIZE = 200


@router.get("/admin")
def admin_page(request: Request, user: str | None = None, page: int = 1,
               caller: Caller = Depends(admin_only),
               ctx: ApiContext = Depends(context)) -> Response:
    everyone = api.list_rules(user or None, caller, ctx)
    pages = max(1, -(-len(everyone) // PAGE_SIZE))
    page = min(max(1, page), pages)
    rules = everyone[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    for rule in rules:
        rule["summary"] = summary(rule["rule"])
    return render(request, ctx, "admin.html", caller, users=api.list_users(caller, ctx),
                  rules=rules, total=len(everyone), page=page, pages=pages, user=user or "",
                  first=(page - 1) * PAGE_SIZE + 1)


@router.post("/admin/switch")
def switch(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    if not form.caller.is_admin:
        raise PageError(403, "Admins only", "This page is for the administrators of this "
                        "service.")
    action = form.get("action")
    if action not in ("disable", "enable"):
        raise PageError(400, "Bad form", "the action is disable or enable")
    try:
        rule_id = int(form.get("id"))
        state = (api.disable_rule if action == "disable" else api.enable_rule)(
            rule_id, form.caller, ctx)
    except ValueError:
        raise PageError(400, "Bad form", "the rule's id is a number") from None
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    user, page = form.get("user"), form.get("page")
    return redirect(ctx, "/admin" + query(user=user or None,
                                          page=page if page.isdigit() and page != "1" else None),
                    f"Rule {state['name']!r} of {state['user']} is {action}d.")
