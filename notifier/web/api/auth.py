"""Who is calling: a personal access token, or a signed-in browser's session cookie.

Each route states what it needs with a dependency:

* ``reader``: any signed-in caller (a session, or a token of either scope);
* ``writer``: a session, or a ``write`` token;
* ``session_only``: a session (managing tokens and sessions themselves);
* ``admin``: a caller named in ``[web] admins``, directly or through a group.

A token comes as ``Authorization: Bearer <token>``. A session is the cookie
:data:`COOKIE`: the session's secret and its HMAC under the service's key,
so a forged cookie is refused before the database is asked. A request with
a cookie that changes state (any method but GET, HEAD and OPTIONS) must
also carry the session's CSRF token in the ``X-CSRF-Token`` header;
``GET /api/v1/users/me`` tells it. The web pages' forms carry it in a
``csrf_token`` field instead, checked by the pages (:func:`csrf_matches`).

FastAPI reads a JSON body before it runs these dependencies: each carries
``before_body(request)``, which :mod:`.problems` runs when the body is
malformed, so that it is not answered 422 to a caller the route refuses.

Refusals: no or bad credentials, 401; a read token on a write route, a
missing or wrong CSRF token, or not an admin, 403; over a rate limit, 429
with ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...storage.credentials import TOKEN_PREFIX, NotInMemory
from .context import ApiContext, api_of, context
from .problems import Problem

COOKIE = "notifier_session"
#: the cookie holding the page asked for before signing in, and for how long (seconds)
NEXT_COOKIE = "notifier_next"
NEXT_TTL = 1800
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """The person behind a request, and what the request may do."""

    name: str
    #: ``read`` or ``write``
    scope: str
    #: ``session`` or ``token``
    via: str
    is_admin: bool
    groups: tuple[str, ...] = ()
    #: the session's secret (to sign out) and its CSRF token; empty for tokens
    session: str = ""
    csrf: str = ""


def _mac(key: bytes, purpose: bytes, value: str) -> str:
    digest = hmac.new(key, purpose + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def cookie_value(key: bytes, secret: str) -> str:
    """The session cookie for ``secret``: the secret and its signature."""
    return f"{secret}.{_mac(key, b'session:', secret)}"


def cookie_secret(key: bytes, value: str) -> str | None:
    """The session secret in a cookie, if its signature holds."""
    secret, dot, signature = value.rpartition(".")
    if not dot or not hmac.compare_digest(signature, _mac(key, b"session:", secret)):
        return None
    return secret


def csrf_token(key: bytes, secret: str) -> str:
    """The CSRF token of the session ``secret``."""
    return _mac(key, b"csrf:", secret)


def limited(wait: int | None, what: str) -> None:
    if wait is not None:
        raise Problem(429, "Too many requests", f"too many requests {what}; "
                      f"try again in {wait} s", headers={"Retry-After": str(wait)})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_address(request: Request, ctx: ApiContext = Depends(context)) -> None:
    """Every API request counts against its client address's rate."""
    limited(ctx.address_limit.hit(client_address(request)), "from this address")


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = "Bearer" + (f' error="{error}"' if error else "")
    return Problem(401, "Sign-in required", detail, headers={"WWW-Authenticate": challenge})


def _identify(request: Request, ctx: ApiContext, memory_only: bool = False) -> Caller:
    """The caller; with ``memory_only``, :class:`NotInMemory` if that needs the database."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        kind, _, secret = authorization.partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'",
                                "invalid_request")
        token = ctx.credentials.token(secret.strip(), memory_only=memory_only)
        if token is None:
            raise _unauthorized("the token is unknown or revoked", "invalid_token")
        return _caller(ctx, token.user, token.scope, "token", memory_only=memory_only)
    value = request.cookies.get(COOKIE)
    caller = session_caller(request, ctx, memory_only=memory_only)
    if caller is None:
        raise _unauthorized("sign in, or send a personal access token"
                            if value is None else "the session has ended; sign in again")
    if request.method not in SAFE_METHODS and not csrf_matches(
            caller, request.headers.get(CSRF_HEADER, "")):
        raise Problem(403, "CSRF token missing or wrong",
                      f"a request made with the session cookie needs the {CSRF_HEADER} "
                      "header that GET /api/v1/users/me gives")
    return caller


def session_caller(request: Request, ctx: ApiContext, memory_only: bool = False
                   ) -> Caller | None:
    """The signed-in person of the request's session cookie, or None (no CSRF check:
    the web pages check the form's ``csrf_token`` field with :func:`csrf_matches`).
    With ``memory_only``, :class:`NotInMemory` if that needs the database."""
    value = request.cookies.get(COOKIE)
    secret = cookie_secret(ctx.key, value) if value else None
    session = ctx.credentials.session(secret, memory_only=memory_only) if secret else None
    if session is None or secret is None:
        return None
    return _caller(ctx, session.user, "write", "session", secret, memory_only=memory_only)


def csrf_matches(caller: Caller, given: str) -> bool:
    """Whether ``given`` is the CSRF token of ``caller``'s session (in constant time)."""
    return bool(caller.csrf) and hmac.compare_digest(given.encode(), caller.csrf.encode())


def _caller(ctx: ApiContext, name: str, scope: str, via: str, secret: str = "", *,
            memory_only: bool = False) -> Caller:
    user = ctx.user(name, memory_only=memory_only) or {}
    groups = tuple(g for g in user.get("groups") or () if isinstance(g, str))
    return Caller(name=name, scope=scope, via=via, groups=groups,
                  is_admin=ctx.config.web.is_admin(name, groups), session=secret,
                  csrf=csrf_token(ctx.key, secret) if secret else "")


def _reader(request: Request, ctx: ApiContext) -> Caller:
    caller = _identify(request, ctx)
    limited(ctx.user_limit.hit(caller.name), "for this user")
    return caller


async def reader(request: Request, ctx: ApiContext = Depends(context)) -> Caller:
    """Any signed-in caller.

    Most requests come from a caller seen in the last seconds: they are answered
    from memory, in the event loop. Only the others go to the thread pool, where
    the database is read.
    """
    try:
        caller = _identify(request, ctx, memory_only=True)
    except NotInMemory:
        caller = await run_in_threadpool(_identify, request, ctx)
    limited(ctx.user_limit.hit(caller.name), "for this user")
    return caller


def _may_write(caller: Caller) -> Caller:
    if caller.scope != "write":
        raise Problem(403, "Read-only token", "this token has the 'read' scope; "
                      "changes need a 'write' token", headers={
                          "WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    return caller


def _in_session(caller: Caller) -> Caller:
    if caller.via != "session":
        raise Problem(403, "Session required", "tokens are managed from a signed-in "
                      "session, or with 'notifier tokens'")
    return caller


def _is_admin(caller: Caller) -> Caller:
    if not caller.is_admin:
        raise Problem(403, "Admins only", f"{caller.name!r} is not an admin")
    return caller


# The guards below only look at the caller: async, so that FastAPI runs them in the
# event loop rather than handing each to its thread pool.

async def writer(caller: Caller = Depends(reader)) -> Caller:
    """A caller that may change things: a session, or a ``write`` token."""
    return _may_write(caller)


async def session_only(caller: Caller = Depends(writer)) -> Caller:
    """A signed-in browser: tokens cannot manage tokens."""
    return _in_session(caller)


async def admin(caller: Caller = Depends(reader)) -> Caller:
    """A caller named in ``[web] admins``."""
    return _is_admin(caller)


async def admin_writer(caller: Caller = Depends(writer)) -> Caller:
    """An admin whose credentials may change things."""
    return _is_admin(caller)


def _before_body(guard: Callable[..., Caller], run: Callable[[Request], Caller]) -> None:
    # how problems.py runs ``guard`` for a request whose body FastAPI refused first
    guard.before_body = run  # type: ignore[attr-defined]


_before_body(reader, lambda request: _reader(request, api_of(request)))
_before_body(writer, lambda request: _may_write(_reader(request, api_of(request))))
_before_body(session_only, lambda request: _in_session(
    _may_write(_reader(request, api_of(request)))))
_before_body(admin, lambda request: _is_admin(_reader(request, api_of(request))))
_before_body(admin_writer, lambda request: _is_admin(
    _may_write(_reader(request, api_of(request)))))


def start_session(ctx: ApiContext, response: Response, name: str, method: str) -> str:
    """Sign ``name`` in: a new session, its cookie set on ``response``; returns its secret."""
    secret = ctx.credentials.start_session(name, method, ctx.session_ttl)
    response.set_cookie(COOKIE, cookie_value(ctx.key, secret), max_age=ctx.session_ttl,
                        path="/", httponly=True, secure=ctx.secure_cookies, samesite="lax")
    response.delete_cookie(NEXT_COOKIE, path="/", httponly=True, secure=ctx.secure_cookies,
                           samesite="lax")
    return secret


def next_cookie(ctx: ApiContext, path: str) -> str:
    """The ``Set-Cookie`` value that remembers ``path``, the page asked for before signing in."""
    holder = Response()
    holder.set_cookie(NEXT_COOKIE, quote(safe_next(path), safe="/?&=%"), max_age=NEXT_TTL,
                      path="/", httponly=True, secure=ctx.secure_cookies, samesite="lax")
    return holder.headers["set-cookie"]


def landing(public_url: str, request: Request) -> str:
    """Where a sign-in leads: the page asked for before it (:func:`next_cookie`), else ``/``."""
    return public_url.rstrip("/") + safe_next(unquote(request.cookies.get(NEXT_COOKIE, "")))


def safe_next(path: str) -> str:
    """``path`` if it is a path of this site (never another host's address), else ``/``."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 2000 \
            or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "/"
    return path


def end_session(ctx: ApiContext, response: Response, caller: Caller) -> None:
    """Sign out: the session is revoked on the server, and its cookie cleared."""
    if caller.session:
        ctx.credentials.end_session(caller.session)
    response.delete_cookie(COOKIE, path="/", httponly=True, secure=ctx.secure_cookies,
                           samesite="lax")


def token_user(ctx: ApiContext, secret: str) -> str | None:
    """The user a personal access token (either scope) belongs to, for feeds and streams."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = ctx.credentials.token(secret)
    return token.user if token is not None else None
