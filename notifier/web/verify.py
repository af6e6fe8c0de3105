"""Confirmation links for email addresses: ``GET /destinations/verify/<secret>`` asks,
``POST`` confirms.

The GET only shows a button: mail scanners and link previews open links, and
must not confirm an address nobody looked at. The POST uses the link up (see
:mod:`notifier.storage.destinations`): the address is verified, and a running
``notifier serve`` starts sending to it within about a second. The secret in
the link is the proof; no session is needed, so the link works in any browser.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from ..storage.destinations import Destinations
from . import pages
from .api.auth import client_address, limited
from .api.context import ApiContext, context

router = APIRouter(include_in_schema=False)

TITLE = "Confirm your address"


def _dead() -> Response:
    return pages.page(TITLE, "<p>This confirmation link has been used or has expired. Ask for "
                      "a new one where you added the address; each link works once, within "
                      "24 hours.</p>", 404)


@router.get("/destinations/verify/{secret}")
def confirm_page(secret: str, request: Request, ctx: ApiContext = Depends(context)) -> Response:
    limited(ctx.address_limit.hit(client_address(request)), "from this address")
    found = Destinations(ctx.store, clock=ctx.clock).link(secret)
    if found is None:
        return _dead()
    return pages.page(TITLE, (
        "<form method='post'>"
        f"<p>Send notifications for <b>{html.escape(found.user)}</b> to "
        f"<b>{html.escape(found.address)}</b>?</p>"
        "<button type='submit'>Confirm</button></form>"))


@router.post("/destinations/verify/{secret}")
def confirm(secret: str, request: Request, ctx: ApiContext = Depends(context)) -> Response:
    limited(ctx.address_limit.hit(client_address(request)), "from this address")
    done = Destinations(ctx.store, clock=ctx.clock).confirm_link(secret)
    if done is None:
        return _dead()
    ctx.changed()
    return pages.page(TITLE, f"<p><b>{html.escape(done.address)}</b> is confirmed: "
                             "notifications can be sent there now.</p>")
