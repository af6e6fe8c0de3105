"""What every page of the web app shares: templates, the signed-in person, forms and CSRF.

Pages are Jinja2 templates under ``templates/web/`` (installed as
``notifier.templates``), rendered on the server; they work without
JavaScript. Every form posts ``application/x-www-form-urlencoded`` and is
answered with a 303 redirect (post, redirect, get), and carries the session's
CSRF token in its ``csrf_token`` field (:func:`posted` checks it; the JSON
API's header rule is unchanged, see :mod:`notifier.web.api.auth`).

A page's work is done by the API's own route functions, called with the
page's caller: so the pages and the API share one set of rules, checks and
errors (:class:`~notifier.web.api.problems.Problem`), which a page shows
next to the field it names, or as a note after the redirect.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlparse

import jinja2
from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...storage.inbox import Inbox
from ..api.auth import Caller, csrf_matches, limited, next_cookie, session_caller
from ..api.context import ApiContext, context

#: the cookie holding a note shown once, on the page a form's redirect leads to
NOTE_COOKIE = "notifier_note"
#: the form field holding the session's CSRF token
CSRF_FIELD = "csrf_token"
FORM_TYPE = "application/x-www-form-urlencoded"
#: no other site may show a page in a frame (and trick a click on its buttons)
FRAME_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
                 "Referrer-Policy": "same-origin"}
#: the main navigation: (path, label)
NAV = [("/inbox", "Inbox"), ("/rules", "Rules"), ("/destinations", "Destinations"),
       ("/tokens", "Tokens"), ("/settings", "Settings")]


class PageError(Exception):
    """A page that cannot be shown: rendered as an HTML page with ``status``."""

    def __init__(self, status: int, title: str, detail: str = "",
                 headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})


def _load(name: str) -> str:
    try:
        return files("notifier.templates").joinpath("web", *name.split("/")).read_text(
            encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise jinja2.TemplateNotFound(name) from exc


@cache
def environment() -> jinja2.Environment:
    """The templates of the web app (``templates/web/``), HTML autoescaped."""
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_load), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["iso"] = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t or 0))
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.tests["web_link"] = lambda value: isinstance(value, str) and value.lower().startswith(
        ("https://", "http://"))
    return env


@cache
def stylesheet() -> bytes:
    """The web app's one stylesheet."""
    return files("notifier.templates").joinpath("web", "static", "style.css").read_bytes()


@cache
def script(name: str) -> bytes:
    """One of the web app's scripts, ``templates/web/static/<name>``."""
    return files("notifier.templates").joinpath("web", "static", name).read_bytes()


def script_response(name: str, cache_control: str) -> Response:
    """:func:`script` ``name`` as JavaScript, cached as ``cache_control`` says."""
    return Response(script(name), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"})


def when(timestamp: float | None) -> str:
    """A time as people read it (UTC)."""
    if timestamp is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def base_path(ctx: ApiContext) -> str:
    """The path of ``[http] base_url`` (empty at a host's root)."""
    return urlparse(ctx.config.http.public_url()).path.rstrip("/")


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: the caller, with what the page's frame shows."""

    caller: Caller
    unread: int


def signed_in(request: Request, ctx: ApiContext = Depends(context)) -> Caller:
    """The signed-in person; anyone else is sent to the sign-in page."""
    caller = session_caller(request, ctx)
    if caller is None:
        headers = {"Location": f"{ctx.config.http.public_url()}/signin"}
        if request.method == "GET":  # the page asked for opens after the sign-in
            query = f"?{request.url.query}" if request.url.query else ""
            headers["Set-Cookie"] = next_cookie(ctx, request.url.path + query)
        raise PageError(303, "Sign-in required", headers=headers)
    limited(ctx.user_limit.hit(caller.name), "for this user")
    return caller


def admin_only(caller: Caller = Depends(signed_in)) -> Caller:
    """A signed-in admin; 403 for anyone else."""
    if not caller.is_admin:
        raise PageError(403, "Admins only", "This page is for the administrators of this "
                        "service.")
    return caller


async def read_form(request: Request) -> FormData:
    """The posted form's fields (a URL-encoded body; its size is bounded by the server)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise PageError(415, "Unsupported form", f"forms are sent as {FORM_TYPE}")
    body = (await request.body()).decode("utf-8", errors="replace")
    return FormData(parse_qsl(body, keep_blank_values=True))


@dataclass(frozen=True)
class Posted:
    """A form posted by a signed-in person, its CSRF token checked."""

    caller: Caller
    form: FormData

    def get(self, name: str, default: str = "") -> str:
        value = self.form.get(name, default)
        return value if isinstance(value, str) else default


def posted(caller: Caller = Depends(signed_in),
           form: FormData = Depends(read_form)) -> Posted:
    """A signed-in person's form; 403 unless its ``csrf_token`` is their session's."""
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not csrf_matches(caller, given):
        raise PageError(403, "Form expired", "This form's security token is missing or "
                        "does not belong to your session. Go back, reload the page and "
                        "send it again.")
    return Posted(caller, form)


def render(request: Request, ctx: ApiContext, template: str, caller: Caller | None = None,
           status: int = 200, unread: int | None = None, **values: Any) -> Response:
    """The page ``template``, framed for ``caller`` (None: nobody signed in); ``unread``
    is the caller's unread count, when the page has it already."""
    note = unquote(request.cookies.get(NOTE_COOKIE, ""))[:300]
    if caller and unread is None:
        unread = Inbox(ctx.store, ctx.clock).counts(caller.name).unread
    body = environment().get_template(template).render(
        base=base_path(ctx), viewer=Viewer(caller, unread or 0) if caller else None,
        csrf=caller.csrf if caller else "", csrf_field=CSRF_FIELD, note=note,
        path=request.url.path, nav=NAV, email_signin=ctx.config.web.email_signin,
        oidc=bool(ctx.config.web.oidc_issuer), **values)
    headers = dict(FRAME_HEADERS)
    if caller:
        headers["Cache-Control"] = "no-store"
    response = HTMLResponse(body, status_code=status, headers=headers)
    if note:
        response.delete_cookie(NOTE_COOKIE, path="/")
    return response


def redirect(ctx: ApiContext, path: str, note: str = "") -> Response:
    """A 303 to ``path`` (under ``base_url``), with ``note`` shown once there."""
    response = RedirectResponse(ctx.config.http.public_url() + path, status_code=303)
    if note:
        response.set_cookie(NOTE_COOKIE, quote(note[:300], safe=""), max_age=120, path="/",
                            httponly=True, samesite="lax", secure=ctx.secure_cookies)
    return response


def error_page(request: Request, ctx: ApiContext, exc: PageError) -> Response:
    """A :class:`PageError` as a page (a redirect when it is one)."""
    if 300 <= exc.status < 400:
        return Response(status_code=exc.status, headers=exc.headers)
    caller = session_caller(request, ctx)
    response = render(request, ctx, "error.html", caller, status=exc.status,
                      title=exc.title, detail=exc.detail)
    response.headers.update(exc.headers)
    return response


def field_errors(errors: list[Mapping[str, str]], fields: Mapping[str, str]
                 ) -> dict[str, list[str]]:
    """A problem's errors by form field: ``fields`` maps a path, or the start of one (the
    longest that fits wins), to a field; an error naming no form field goes under ``""``."""
    out: dict[str, list[str]] = {}
    for error in errors:
        path = str(error.get("field") or "")
        key = next((fields[prefix] for prefix in sorted(fields, key=len, reverse=True)
                    if path == prefix or path.startswith((prefix + ".", prefix + "["))), "")
        detail = str(error.get("detail") or "")
        out.setdefault(key, []).append(f"{path}: {detail}" if key == "" and path else detail)
    return out


def query(**values: Any) -> str:
    """A query string of the values that are not None."""
    kept = {k: v for k, v in values.items() if v is not None}
    return "?" + urlencode(kept) if kept else ""


def local_path(target: str, fallback: str) -> str:
    """``target`` if it is a path of this site (never another site's address), else
    ``fallback``: where a form's ``back`` field may send the browser."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    return target
