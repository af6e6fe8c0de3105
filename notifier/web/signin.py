"""Sign-in links: ``GET /signin/link/<secret>`` asks, ``POST`` signs in.

The GET only shows a button: mail scanners and link previews open links,
and must not use up a single-use link or sign anyone in. The POST uses the
link, starts a session (its cookie: see :mod:`notifier.web.api.auth`) and
sends the browser to the service's home page.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from . import pages
from .api.auth import client_address, landing, limited, start_session
from .api.context import ApiContext, context

router = APIRouter(include_in_schema=False)


@router.get("/signin/link/{secret}")
def link_page(secret: str, request: Request, ctx: ApiContext = Depends(context)) -> Response:
    limited(ctx.address_limit.hit(client_address(request)), "from this address")
    user = ctx.credentials.link_user(secret)
    return pages.sign_in_link_dead() if user is None else pages.sign_in_link_form(user)


@router.post("/signin/link/{secret}")
def use_link(secret: str, request: Request, ctx: ApiContext = Depends(context)) -> Response:
    limited(ctx.address_limit.hit(client_address(request)), "from this address")
    user = ctx.credentials.use_link(secret)
    if user is None:
        return pages.sign_in_link_dead()
    response = RedirectResponse(landing(ctx.config.http.public_url(), request),
                                status_code=303)
    start_session(ctx, response, user, "link")
    return response
