"""Where notifications go: addresses and nicks, their verification, digests, the feed.

===============================  ======================================================
``GET /destinations``            every email address and IRC nick with its state, the
                                 delivery settings, the feed's addresses
``POST /destinations/add``       ``kind``, ``address``: added, and a link or code sent
``POST /destinations/code``      ``id``, ``code``: an IRC nick verified
``POST /destinations/resend``    ``id``: a new link or code
``POST /destinations/remove``    ``id``: removed
``POST /destinations/delivery``  per destination: which address, at once or a digest
``POST /destinations/browsers/remove``  ``id``: a browser's push subscription removed
``GET /sw.js``                   the service worker that shows Web Push notifications
``GET /static/web/push.js``      the page's script: subscribe this browser, copy the feed
===============================  ======================================================

An email address is confirmed by the link mailed to it (its page is
:mod:`notifier.web.verify`). The work is the API's
(:mod:`notifier.web.api.destinations`); each problem is shown next to the
field it names.

The page's live parts are JavaScript (``templates/web/static/push.js``), and
without it the page works the same: "Get notifications in this browser"
registers the service worker (``templates/web/static/sw.js``, served at
``{base}/sw.js`` so that its scope is the whole site), subscribes with the
VAPID key of ``GET /api/v1/push/key`` and posts the subscription to the API;
the feed addresses get a "Copy" button. The list of browsers, and removing
one, is server-rendered.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ...users.settings import DESTINATION_KEYS
from ..api import destinations as api
from ..api import push as push_api
from ..api.auth import Caller
from ..api.context import ApiContext, context
from ..api.problems import Problem
from .base import (
    PageError,
    Posted,
    field_errors,
    posted,
    redirect,
    render,
    script_response,
    signed_in,
)

router = APIRouter(include_in_schema=False)

#: what each destination is called on the page
NAMES = {"email": "Email", "irc": "IRC", "rss": "Feed (Atom and RSS)",
         "desktop": "Desktop notifications", "webpush": "Web Push", "matrix": "Matrix"}
#: a delivery problem's path -> its form field
DELIVERY_FIELDS = {
    **{kind: f"{kind}-digest" for kind in DESTINATION_KEYS},
    **{f"{kind}.{key}": f"{kind}-{key}" for kind, keys in DESTINATION_KEYS.items()
       for key in keys if key != "digest"},
    **{f"{kind}.digest": f"{kind}-digest" for kind in DESTINATION_KEYS},
    **{f"{kind}.digest.{key}": f"{kind}-{key}" for kind in DESTINATION_KEYS
       for key in ("every", "max_items")},
}


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker; at the site's root, its scope is the whole site. Browsers
    check it for a new version on each visit (no-cache)."""
    return script_response("sw.js", "no-cache")


def _feeds(ctx: ApiContext, caller: Caller) -> dict[str, str]:
    user = ctx.store.get_user(caller.name) or {}
    token = user.get("feed_token")
    if not token:
        return {}
    return {fmt: ctx.config.http.feed_url(caller.name, str(token), fmt)
            for fmt in ("atom", "rss")}


def delivery_values(delivery: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What the delivery form's fields show for the API's delivery settings."""
    out: dict[str, dict[str, str]] = {}
    for kind, keys in DESTINATION_KEYS.items():
        settings = delivery.get(kind) or {}
        digest = settings.get("digest") or {}
        values = {"digest": "digest" if digest else "none",
                  "every": str(digest.get("every", "")),
                  "max_items": str(digest.get("max_items", ""))}
        for key in keys:
            if key != "digest":
                values[key] = str(settings.get(key) or "")
        out[kind] = values
    return out


def delivery_from_form(form: Posted) -> dict[str, Any]:
    """The API's delivery settings from the form (the API checks them)."""
    data: dict[str, Any] = {}
    for kind, keys in DESTINATION_KEYS.items():
        settings: dict[str, Any] = {}
        for key in keys:
            if key != "digest" and form.get(f"{kind}-{key}"):
                settings[key] = form.get(f"{kind}-{key}")
        if form.get(f"{kind}-digest") == "digest":
            digest: dict[str, Any] = {"every": form.get(f"{kind}-every").strip()}
            most = form.get(f"{kind}-max_items").strip()
            if most:
                digest["max_items"] = int(most) if most.isdigit() else most
            settings["digest"] = digest
        data[kind] = settings or None
    return data


def _page(request: Request, ctx: ApiContext, caller: Caller, *, status: int = 200,
          errors: dict[str, list[str]] | None = None, added: dict[str, str] | None = None,
          delivery: dict[str, dict[str, str]] | None = None) -> Response:
    listing = api.list_destinations(caller, ctx)
    verified = {kind: [d["address"] for d in listing
                       if d["kind"] == kind and d["state"] == "verified"]
                for kind in ("email", "irc", "matrix")}
    return render(request, ctx, "destinations.html", caller, status=status,
                  destinations=listing, verified=verified, errors=errors or {},
                  added=added or {"kind": "email", "address": ""},
                  delivery=delivery or delivery_values(api.get_delivery(caller, ctx)),
                  kinds=DESTINATION_KEYS, names=NAMES, feeds=_feeds(ctx, caller),
                  irc=bool(ctx.config.irc.host), matrix=bool(ctx.config.matrix.homeserver),
                  now=ctx.clock(),
                  push_enabled=bool(ctx.config.webpush.contact),
                  browsers=push_api.list_subscriptions(caller, ctx))


@router.get("/destinations")
def destinations_page(request: Request, caller: Caller = Depends(signed_in),
                      ctx: ApiContext = Depends(context)) -> Response:
    return _page(request, ctx, caller)


def _problem_page(request: Request, ctx: ApiContext, form: Posted, exc: Problem,
                  fields: dict[str, str], **values: Any) -> Response:
    if exc.status == 404:
        raise PageError(404, exc.title, exc.detail or "") from exc
    errors = field_errors(exc.errors or [{"field": "", "detail": exc.detail or exc.title}],
                          fields)
    answer = _page(request, ctx, form.caller, status=exc.status, errors=errors, **values)
    answer.headers.update(exc.headers)
    return answer


@router.post("/destinations/add")
def add(request: Request, form: Posted = Depends(posted),
        ctx: ApiContext = Depends(context)) -> Response:
    added = {"kind": form.get("kind"), "address": form.get("address").strip()}
    try:
        body = api.NewDestination(kind=added["kind"], address=added["address"])
        made = api.add_destination(body, Response(), form.caller, ctx)
    except ValidationError as exc:
        fields = {str(e["loc"][0]) if e.get("loc") else "address" for e in exc.errors()}
        return _page(request, ctx, form.caller, status=422, added=added, errors={
            f"add-{f}": ["Choose email or IRC." if f == "kind" else
                         "Enter an email address or an IRC nick."] for f in fields})
    except Problem as exc:
        return _problem_page(request, ctx, form, exc,
                             {"address": "add-address", "kind": "add-kind"}, added=added)
    sent = "a confirmation link is on its way to it" if made["kind"] == "email" else \
        "a code is on its way to it in a private message: enter it below"
    return redirect(ctx, "/destinations", f"{made['address']} is added; {sent}.")


def _ident(form: Posted) -> int:
    try:
        return int(form.get("id"))
    except ValueError:
        raise PageError(400, "Bad form", "the destination's id is a number") from None


@router.post("/destinations/code")
def verify(request: Request, form: Posted = Depends(posted),
           ctx: ApiContext = Depends(context)) -> Response:
    ident = _ident(form)
    try:
        done = api.verify_destination(ident, api.Code(code=form.get("code").strip()),
                                      form.caller, ctx)
    except ValidationError:
        return _page(request, ctx, form.caller, status=422,
                     errors={f"code-{ident}": ["Enter the code from the message."]})
    except Problem as exc:
        return _problem_page(request, ctx, form, exc, {"code": f"code-{ident}",
                                                       "": f"code-{ident}"})
    return redirect(ctx, "/destinations", f"{done['address']} is verified.")


@router.post("/destinations/resend")
def resend(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    try:
        again = api.resend(_ident(form), form.caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "", exc.headers) from exc
    return redirect(ctx, "/destinations", f"A new {'link' if again['kind'] == 'email' else 'code'}"
                    f" is on its way to {again['address']}; the previous one no longer works.")


@router.post("/destinations/remove")
def remove(form: Posted = Depends(posted), ctx: ApiContext = Depends(context)) -> Response:
    try:
        api.remove_destination(_ident(form), form.caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return redirect(ctx, "/destinations", "The destination is removed.")


@router.post("/destinations/delivery")
def delivery(request: Request, form: Posted = Depends(posted),
             ctx: ApiContext = Depends(context)) -> Response:
    data = delivery_from_form(form)
    try:
        api.put_delivery(data, form.caller, ctx)
    except Problem as exc:
        return _problem_page(request, ctx, form, exc, DELIVERY_FIELDS,
                             delivery=delivery_values(data))
    return redirect(ctx, "/destinations", "Your delivery settings are saved.")


@router.post("/destinations/browsers/remove")
def remove_browser(form: Posted = Depends(posted),
                   ctx: ApiContext = Depends(context)) -> Response:
    try:
        push_api.remove_subscription(_ident(form), form.caller, ctx)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail or "") from exc
    return redirect(ctx, "/destinations", "The browser is removed: it gets no more "
                    "notifications.")

