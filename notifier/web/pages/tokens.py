"""Personal access tokens: create (the token shown once), list, revoke.

=========================  ====================================================
``GET /tokens``            the caller's tokens, by name, with their last use
``POST /tokens``           ``name``, ``scope``: a new token, shown on the answer
``POST /tokens/revoke``    ``id``: revoked at once
=========================  ====================================================

A new token is shown once, on the page that answers its form (not stored,
so a redirect could not show it); that page is never cached. The work is
the API's (:mod:`notifier.web.api.tokens`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..api import tokens as api
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import PageError, Posted, posted, redirect, render, signed_in

router = APIRouter(include_in_schema=False)


def _page(request: Request, ctx: ApiContext, caller: Caller, *, status: int = 200,
          created: dict[str, object] | None = None, name: str = "", scope: str = "read",
          errors: dict[str, list[str]] | None = None) -> Response:
    return render(request, ctx, "tokens.html", caller, status=status,
                  tokens=api.list_tokens(caller, ctx), created=created, name=name,
                  scope=scope, errors=errors or {})


@router.get("/tokens")
def tokens_page(request: Request, caller: Caller = Depends(signed_in),
                ctx: ApiContext = Depends(context)) -> Response:
    return _page(request, ctx, caller)


@router.post("/tokens")
def create(request: Request, form: Posted = Depends(posted),
           ctx: ApiContext = Depends(context)) -> Response:
    name, scope = form.get("name").strip(), form.get("scope", "read")
    try:
        created = api.create_token(api.NewToken(name=name, scope=scope), form.caller, ctx)
    except ValidationError as exc:
        fields = {str(e["loc"][0]) if e.get("loc") else "name" for e in exc.errors()}
        errors = {f: ["Give the token a name of 1 to 100 characters." if f == "name"
                      else "Choose read or write."] for f in fields}
        return _page(request, ctx, form.caller, status=422, name=name, scope=scope,
                     errors=errors)
    except Problem as exc:
        return _page(request, ctx, form.caller, status=exc.status, name=name, scope=scope,
                     errors={"name": [exc.detail or exc.title]})
    return _page(request, ctx, form.caller, created=created)


@router.post("/tokens/revoke")
def revoke(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    try:
        token_id = int(form.get("id"))
    except ValueError:
        raise PageError(400, "Bad form", "the token's id is a number") from None
    try:
        api.revoke_token(token_id, form.caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return redirect(ctx, "/tokens", "The token is revoked: it no longer works.")
