"""The ASGI application: every route of ``notifier serve``'s HTTP side.

=====================================  ===========================================
``GET /``                              what this service is; signed in, the inbox
``/signin``, ``/inbox``, ``/rules``...   the web app's pages (:mod:`.pages`)
``GET /healthz``                       200 when ready, else 503 naming the part (JSON)
``GET /healthz/live``, ``/ready``      liveness and readiness, the same way
``GET /metrics``                       Prometheus text format
``GET /feeds/<user>.atom?token=T``     the user's Atom feed (``.rss`` for RSS 2.0)
``GET /users/<user>/stream?token=T``   the user's desktop notifications, as Server-Sent Events
``GET /api/v1/notifications/stream``   the caller's inbox, live (:mod:`.inboxstream`)
``GET /unsubscribe/<token>``           a page with a button that disables the rule
``POST /unsubscribe/<token>``          disables the rule (RFC 8058 one-click)
``GET /widget.js``                     ``<notifier-inbox>`` for other sites (:mod:`.widget`)
``GET|POST /signin/link/<secret>``     a sign-in link: a button, then a session
``GET /signin/oidc``, ``.../callback``  OpenID Connect sign-in (:mod:`.oidc`)
``GET|POST /destinations/verify/<s>``  an address's confirmation link: a button, then verified
``/api/v1/...``                        the JSON API (:mod:`notifier.web.api`); its
                                       schema at ``/api/v1/openapi.json``, docs at
                                       ``/api/v1/docs``
=====================================  ===========================================

Feeds and streams take the user's feed token, or one of their personal
access tokens (either scope) as ``?token=`` or ``Authorization: Bearer``.

The routes above the API stay out of the OpenAPI schema, which belongs to
the JSON API under ``/api/v1``. A wrong or missing token is the same 404 as an unknown
user or path (see :mod:`notifier.web.users`).

:class:`Application` puts the request limits and CORS in front of
everything, then sends a live stream's request straight to its handler and
every other request to the FastAPI application (:attr:`Application.api`).
Streams are most of the connections, and after a restart all of them come
back at once: skipping FastAPI's middleware and routing for them halves
the cost of each reconnection (measured by ``benchmarks/stream.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..config import HttpConfig
from ..errors import InputError
from ..render.feed import conditional_response, feed_validators, render_feed
from ..storage.credentials import TOKEN_PREFIX
from ..storage.feeds import FeedStore
from . import pages, signin, verify, widget
from .api import PREFIX as API_PREFIX
from .api import ApiContext, create_router, problems
from .api.auth import token_user
from .cors import AllowedOrigins
from .docs import add_docs
from .hub import StreamHub
from .inboxstream import PATH as INBOX_STREAM
from .inboxstream import RESPONSES as INBOX_STREAM_RESPONSES
from .inboxstream import StreamResponse, open_stream
from .limits import RequestLimits
from .stream import stream_response
from .users import FeedUsers, User

log = logging.getLogger(__name__)

FEED_TYPES = {"atom": "application/atom+xml; charset=utf-8",
              "rss": "application/rss+xml; charset=utf-8"}


@dataclass(frozen=True)
class Parts:
    """What the application needs from the service."""

    http: HttpConfig
    #: ``health(kind)``, kind ``live`` or ``ready``: (healthy, JSON body naming what is not)
    health: Callable[[str], tuple[bool, dict[str, Any]]]
    #: the Prometheus text of the service's metrics
    metrics: Callable[[], bytes]
    users: FeedUsers
    feeds: FeedStore
    feed_items: int
    hub: StreamHub
    #: ``(user, rule)`` an unsubscribe token names; InputError when it is not valid
    check_unsubscribe: Callable[[str], tuple[str, str]]
    #: disables the rule a token names, returns ``(user, rule)``; InputError when not valid
    unsubscribe: Callable[[str], tuple[str, str]]
    #: what the API and sign-in need; None serves neither
    api: ApiContext | None = None


_STREAM = re.compile(r"/users/(.+)/stream")


class Application:
    """The ASGI application: limits, CORS, then a stream's handler or :attr:`api`."""

    def __init__(self, parts: Parts):
        self.api = create_api(parts)
        self.parts = parts
        # CORS outside the limits, so that their refusals carry CORS headers too.
        self._app = AllowedOrigins(RequestLimits(
            self._route, max_body_bytes=parts.http.max_body_bytes,
            max_header_bytes=parts.http.max_header_bytes), origins=parts.http.allowed_origins,
            credentials_paths=(INBOX_STREAM, *widget.API_PATHS), own=parts.http.public_url())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.api(scope, receive, send)
            return
        if scope["path"] == INBOX_STREAM and self.parts.api is not None:
            await (await open_stream(self.parts.hub.inbox, self.parts.api,
                                     Request(scope, receive)))(scope, receive, send)
            return
        match = _STREAM.fullmatch(scope["path"])
        if match is None:
            await self.api(scope, receive, send)
            return
        request = Request(scope, receive)
        name = match.group(1)
        if await local_user(self.parts, name, request_token(request)) is None:
            response: Any = pages.not_found()
        else:
            response = stream_response(self.parts.hub, name, request)
        await response(scope, receive, send)


def request_token(request: Request) -> str | None:
    """The token of a feed or stream request: ``?token=``, else a Bearer header."""
    token = request.query_params.get("token")
    if token is None:
        kind, _, value = request.headers.get("authorization", "").partition(" ")
        if kind.lower() == "bearer" and value.strip():
            token = value.strip()
    return token


async def local_user(parts: Parts, name: str, token: str | None) -> User | None:
    """The local user ``name`` if ``token`` is their feed token (see :mod:`.users`), or
    one of their personal access tokens."""
    users = parts.users
    settled, user = users.known(name)
    if not settled:
        user = await run_in_threadpool(users.load, name)
    if token and token.startswith(TOKEN_PREFIX) and parts.api is not None:
        owner = await run_in_threadpool(token_user, parts.api, token)
        return user if owner == name else None
    return users.check(user, token)


def create_api(parts: Parts) -> FastAPI:
    """The FastAPI application: every route but the live stream's (see :class:`Application`)."""
    app = FastAPI(title="notifier", version=__version__,
                  description="Manage your notifications: rules, destinations, inbox, tokens.",
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None,
                  redoc_url=None)

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code != 404:
            return Response(exc.detail, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
        return pages.not_found()

    problems.install(app, fallback=not_found)
    add_docs(app, API_PREFIX)
    if parts.api is not None:
        app.state.api = parts.api
        app.include_router(create_router(), prefix=API_PREFIX)
        app.include_router(signin.router)
        app.include_router(verify.router)
        app.include_router(widget.router)
        pages.install(app)
        hub, ctx = parts.hub, parts.api

        # Served by Application before FastAPI; here for the schema, and for whoever
        # serves this FastAPI application alone.
        @app.get(INBOX_STREAM, tags=["inbox"], response_class=StreamResponse,
                 responses=INBOX_STREAM_RESPONSES)
        async def notification_stream(request: Request) -> Response:
            """The caller's notifications, live, as Server-Sent Events.

            Opens with ``event: counts`` (``{"total", "unread"}``); then each new
            notification as ``event: notification``, its ``id`` the notification's,
            its ``data`` the same object as an item of ``GET /notifications``.
            Resumes after ``Last-Event-ID`` (or ``?since=``). A session cookie, or a
            token as ``Authorization: Bearer`` or ``?token=``.
            """
            answer = await open_stream(hub.inbox, ctx, request)
            return answer if isinstance(answer, Response) else StreamResponse(answer)
        if parts.api.config.web.oidc_issuer:
            from . import oidc  # Authlib comes with the "web" extra

            app.include_router(oidc.router_for(parts.api))

    def route(path: str, methods: list[str]) -> Callable[[Any], Any]:
        def register(endpoint: Any) -> Any:
            app.add_route(path, endpoint, methods=methods, include_in_schema=False)
            return endpoint
        return register

    @route("/", ["GET"])
    async def home(request: Request) -> Response:
        return pages.home()

    def health(kind: str) -> Response:
        healthy, body = parts.health(kind)
        return JSONResponse(body, status_code=200 if healthy else 503)

    @route("/healthz", ["GET"])
    def healthz(request: Request) -> Response:
        return health("ready")

    @route("/healthz/{kind}", ["GET"])
    def healthz_kind(request: Request) -> Response:
        kind = request.path_params["kind"]
        return health(kind) if kind in ("live", "ready") else pages.not_found()

    @route("/metrics", ["GET"])
    def metrics(request: Request) -> Response:
        return Response(parts.metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @route("/feeds/{name:path}", ["GET"])
    async def feed(request: Request) -> Response:
        user_name, dot, fmt = request.path_params["name"].rpartition(".")
        if not dot or fmt not in FEED_TYPES:
            return pages.not_found()
        token = request_token(request)
        user = await local_user(parts, user_name, token)
        if user is None:
            return pages.not_found()
        return await run_in_threadpool(_feed, parts, user["name"], token or "", fmt,
                                       request.headers)

    @route("/unsubscribe/{token}", ["GET"])
    def unsubscribe_page(request: Request) -> Response:
        try:
            user, rule = parts.check_unsubscribe(request.path_params["token"])
        except InputError:
            return pages.not_found()
        return pages.unsubscribe_form(user, rule)

    @route("/unsubscribe/{token}", ["POST"])
    async def unsubscribe(request: Request) -> Response:
        await request.body()  # "List-Unsubscribe=One-Click"; its size is bounded
        try:
            user, rule = await run_in_threadpool(parts.unsubscribe,
                                                 request.path_params["token"])
        except InputError:
            return pages.not_found()
        return pages.unsubscribed(user, rule)

    return app


def _feed(parts: Parts, user: str, token: str, fmt: str, headers: Any) -> Response:
    items = parts.feeds.items(user, parts.feed_items)
    etag, last_modified = feed_validators(items, fmt)  # type: ignore[arg-type]
    out = {"ETag": etag, "Cache-Control": "private, max-age=60"}
    if last_modified:
        out["Last-Modified"] = last_modified
    if conditional_response(headers, etag, last_modified):
        return Response(status_code=304, headers=out)
    body = render_feed(user, items, fmt, parts.http.feed_url(user, token, fmt),  # type: ignore[arg-type]
                       home_url=parts.http.public_url() + "/")
    return Response(body, media_type=FEED_TYPES[fmt], headers=out)
