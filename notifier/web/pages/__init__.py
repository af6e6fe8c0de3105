"""The web app's pages, rendered on the server, and the plain pages that need no sign-in.

One module per group of pages, each with its own ``router``:

======================  =====================================================================
:mod:`.account`         ``/`` (home), ``/signin``, ``/signin/email``, ``/signout``
:mod:`.inbox`           ``/inbox``: notifications, read state, why, mute and snooze
:mod:`.rules`           ``/rules``: the list with 7-day counts, enable, disable, delete
:mod:`.editor`          ``/rules/new``, ``/rules/edit``: every kind of tracking, every filter
:mod:`.destinations`    ``/destinations``: addresses, verification, digests, the feed
:mod:`.tokens`          ``/tokens``: personal access tokens
:mod:`.settings`        ``/settings``: quiet hours
:mod:`.admin`           ``/admin``: users and everyone's rules, for admins
:mod:`.plain`           pages without sign-in: home without the API, unsubscribe,
                        the sign-in link's button
======================  =====================================================================

What they share (templates, the signed-in person, forms and their CSRF
field) is :mod:`.base`. The stylesheet is ``/static/web/style.css``; ``/static/web/live.js``
keeps the unread count and the inbox's list live on every signed-in page.
Templates leave a ``{% block scripts %}`` for the parts that JavaScript adds.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from . import account, admin, destinations, editor, inbox, rules, settings, tokens
from .base import PageError, error_page, script_response, stylesheet
from .plain import (
    home,
    not_found,
    page,
    sign_in_link_dead,
    sign_in_link_form,
    unsubscribe_form,
    unsubscribed,
)

__all__ = ["create_router", "home", "install", "not_found", "page", "sign_in_link_dead",
           "sign_in_link_form", "unsubscribe_form", "unsubscribed"]

STYLESHEET = "/static/web/style.css"
#: the script that keeps the unread count and the inbox live (templates/web/static/live.js)
LIVE_SCRIPT = "/static/web/live.js"
#: the pages' scripts, served from templates/web/static/ at /static/web/<name>
SCRIPTS = frozenset({"live.js", "editor.js", "push.js", "timezone.js"})


def create_router() -> APIRouter:
    """Every page of the web app (they need the API's context: ``app.state.api``)."""
    router = APIRouter(include_in_schema=False)
    for module in (account, inbox, rules, editor, destinations, tokens, settings, admin):
        router.include_router(module.router)

    @router.get(STYLESHEET)
    def style() -> Response:
        return Response(stylesheet(), media_type="text/css; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/static/web/{name}")
    def page_script(name: str) -> Response:
        if name not in SCRIPTS:
            return not_found()
        return script_response(name, "public, max-age=3600")

    return router


def install(app: FastAPI) -> None:
    """Serve the pages on ``app``, and answer their errors as pages."""

    def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, request.app.state.api, exc)

    app.add_exception_handler(PageError, on_page_error)
    app.include_router(create_router())
