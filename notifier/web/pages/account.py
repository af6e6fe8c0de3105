"""Signing in and out, and the home page.

======================  ==========================================================
``GET /``               signed in: the start page; else what this service is
``GET /signin``         the identity provider's button (``[web] oidc_issuer``) and
                        the form asking for a link by email (``[web] email_signin``)
``POST /signin/email``  asks for the link, as ``POST /api/v1/signin/email`` does
``POST /signout``       ends the session on the server
======================  ==========================================================

Signing in itself is :mod:`notifier.web.signin` (the link) and
:mod:`notifier.web.oidc`; both send the browser to ``/`` when done.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ..api.account import EmailSignIn, sign_in_by_email
from ..api.auth import client_address, end_session, limited, session_caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import PageError, Posted, posted, read_form, redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, ctx: ApiContext = Depends(context)) -> Response:
    caller = session_caller(request, ctx)
    if caller is None:
        return render(request, ctx, "home.html")
    limited(ctx.user_limit.hit(caller.name), "for this user")
    rules = ctx.store.list_rules(caller.name)
    return render(request, ctx, "start.html", caller, rules=len(rules),
                  enabled=sum(1 for rule in rules if not rule.get("disabled")))


@router.get("/signin")
def sign_in_page(request: Request, ctx: ApiContext = Depends(context)) -> Response:
    if session_caller(request, ctx) is not None:
        return redirect(ctx, "/")
    return render(request, ctx, "signin.html", address="", errors={})


@router.post("/signin/email")
def ask_for_link(request: Request, form: FormData = Depends(read_form),
                 ctx: ApiContext = Depends(context)) -> Response:
    limited(ctx.address_limit.hit(client_address(request)), "from this address")
    address = str(form.get("address") or "").strip()
    background = BackgroundTasks()
    try:
        sign_in_by_email(EmailSignIn(address=address), background, ctx)
    except ValidationError:
        return render(request, ctx, "signin.html", status=422, address=address,
                      errors={"address": ["Enter an email address, such as "
                                          "name@example.org."]})
    except Problem as exc:
        if exc.status == 404:  # sign-in by email is off
            raise PageError(404, exc.title, exc.detail or "") from exc
        answer = render(request, ctx, "signin.html", status=exc.status, address=address,
                        errors={"address": [exc.detail or exc.title]})
        answer.headers.update(exc.headers)
        return answer
    response = redirect(ctx, "/signin", "If this address belongs to an account, a sign-in "
                        "link is on its way to it. It works once, within 15 minutes.")
    response.background = background
    return response


@router.post("/signout")
def sign_out(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    response = redirect(ctx, "/signin", "You are signed out.")
    end_session(ctx, response, form.caller)
    return response
