"""Signing in by email, and signing out.

``POST /signin/email`` with ``{"address": ...}`` always answers 202, whether
or not the address belongs to someone, and does its work after answering:
so neither the answer nor its timing tells who has an account. When the
address is one of a user's emails, a single-use link valid 15 minutes goes
to it, at most ``[web] signin_links_per_hour`` an hour per address.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Response
from pydantic import BaseModel, Field

from ...storage.credentials import LINK_TTL
from .auth import Caller, end_session, limited, reader
from .context import ApiContext, context
from .problems import Problem

log = logging.getLogger(__name__)

router = APIRouter(tags=["account"])


class EmailSignIn(BaseModel):
    address: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


def user_for_address(ctx: ApiContext, address: str) -> tuple[str, str] | None:
    """The user with ``address`` among their emails (compared without case), and the
    address as they gave it; or None."""
    wanted = address.strip().lower()
    for user in ctx.store.list_users():
        emails = user.get("emails")
        for email in emails if isinstance(emails, list) else ():
            if isinstance(email, str) and email.lower() == wanted:
                return str(user["name"]), email
    return None


def sign_in_url(ctx: ApiContext, secret: str) -> str:
    return f"{ctx.config.http.public_url()}/signin/link/{secret}"


def send_link(ctx: ApiContext, address: str) -> None:
    """Mail a sign-in link to ``address`` if it is a user's and under its hourly limit.

    The link goes to, and is counted against, the address as the user's record
    spells it: however the request spells it, one address has one limit.
    """
    found = user_for_address(ctx, address)
    if found is None:
        return
    name, address = found
    if ctx.credentials.links_sent(address, 3600) >= ctx.config.web.signin_links_per_hour:
        log.warning("sign-in link for %r not sent: %d already sent in the last hour",
                    name, ctx.config.web.signin_links_per_hour)
        return
    secret = ctx.credentials.create_link(name, address)
    minutes = LINK_TTL // 60
    try:
        ctx.mail(address, "Sign in to notifier",
                 f"Hello {name},\n\nto sign in to notifier, open this link within {minutes} "
                 f"minutes:\n\n{sign_in_url(ctx, secret)}\n\nIt works once. If you did not ask "
                 "to sign in, ignore this mail.\n", user=name)
    except Problem as exc:
        log.error("sign-in link for %r not sent: %s", name, exc.detail)


@router.post("/signin/email", status_code=202)
def sign_in_by_email(body: EmailSignIn, background: BackgroundTasks,
                     ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Ask for a sign-in link by email (when sign-in by email is on)."""
    if not ctx.config.web.email_signin:
        raise Problem(404, "Sign-in by email is off", "this site signs in through its "
                      "identity provider")
    limited(ctx.user_limit.hit("signin-email:" + body.address.lower()), "for this address")
    background.add_task(send_link, ctx, body.address)
    return {"detail": "if this address belongs to an account, a sign-in link is on its way"}


@router.post("/signout", status_code=204)
def sign_out(response: Response, caller: Caller = Depends(reader),
             ctx: ApiContext = Depends(context)) -> Response:
    """End this session on the server; the cookie no longer signs anyone in."""
    if caller.via != "session":
        raise Problem(403, "Session required", "sign-out ends a browser session; "
                      "revoke a token with DELETE /api/v1/tokens/{id}")
    end_session(ctx, response, caller)
    response.status_code = 204
    return response
