"""Sign-in through OpenID Connect: the authorization code flow with PKCE, through Authlib.

===================================  ==============================================
``GET /signin/oidc``                 redirects to the identity provider (``[web] oidc_issuer``)
``GET /signin/oidc/callback``        where the provider sends the person back: the code is
                                     exchanged, the ID token checked, the session started
===================================  ==============================================

The redirect URI to register with the provider is ``<base_url>/signin/oidc/callback``.

:meth:`OidcSignIn.begin` draws a state, a nonce and a PKCE verifier (S256), keeps them
on the server for ten minutes, keyed by the state, and the browser gets the state in a
cookie scoped to ``/signin/oidc``: the callback is accepted only from the browser that
started it, once. :meth:`OidcSignIn.finish` exchanges the code (the client
authenticates with its secret), checks the ID token (signature against the provider's
JWKS, issuer, audience, expiry, nonce, ``at_hash``), reads the claims of the user-info
endpoint for the same subject, and returns an :class:`Identity`: the name from
``[web] username_claim``, the groups from ``[web] groups_claim``, the verified email.

What becomes of the identity is the ``complete`` given to :func:`create_router`; the
service's (:func:`router_for`) enrols the user on first sign-in, with the claimed
emails and groups (or FASJSON's, when configured), and starts a session. Every
failure is an HTML page with the status of its :class:`~notifier.errors.SignInError`
and a way to start again, never a traceback; too many requests from one address are a
429, as everywhere in the API. The routes stay out of the OpenAPI schema: they are the
way in, not the API.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import NotifierError, ProviderError, SignInError
from . import pages
from .api.auth import client_address, landing, limited, start_session
from .api.context import ApiContext

log = logging.getLogger(__name__)

SCOPE = "openid profile email"
#: the cookie holding the state of a sign-in under way, and where it is sent
STATE_COOKIE = "notifier_oidc"
STATE_PATH = "/signin/oidc"
#: seconds a started sign-in may take at the provider
PENDING_TTL = 600
#: sign-ins under way kept at most (the oldest go first)
MAX_PENDING = 10_000
#: seconds the provider's metadata and keys are kept before they are asked for again
METADATA_TTL = 3600
#: seconds of clock difference allowed with the provider
LEEWAY = 120
#: signature algorithms an ID token may use (never "none", never the client's secret)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")


@dataclass(frozen=True)
class Identity:
    """Who signed in, as the identity provider says."""

    name: str
    emails: tuple[str, ...]
    groups: tuple[str, ...]
    #: every claim of the ID token and the user-info endpoint
    claims: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class _Pending:
    nonce: str
    verifier: str
    expires: float


class OidcSignIn:
    """The client side of the code flow for one provider (see the module docstring)."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str, *,
                 username_claim: str = "preferred_username", groups_claim: str = "groups",
                 timeout: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.username_claim = username_claim
        self.groups_claim = groups_claim
        self._timeout = timeout
        self._clock = clock
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, dict[str, Any]] | None = None

    @classmethod
    def from_config(cls, web: Any, public_url: str) -> OidcSignIn:
        """From ``[web]`` (``oidc_issuer``, ``client_id``, ...) and the public base URL."""
        return cls(web.oidc_issuer, web.client_id, web.client_secret,
                   f"{public_url.rstrip('/')}/signin/oidc/callback",
                   username_claim=web.username_claim, groups_claim=web.groups_claim)

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(self.client_id, self.client_secret, scope=SCOPE,
                                 redirect_uri=self.redirect_uri, code_challenge_method="S256",
                                 timeout=self._timeout)

    async def begin(self) -> tuple[str, str]:
        """Start a sign-in: ``(the provider's authorization URL, the state for the cookie)``."""
        metadata = await self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters, as RFC 7636 allows
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                _endpoint(metadata, "authorization_endpoint"), state=state, nonce=nonce,
                code_verifier=verifier)
        now = self._clock()
        while self._pending and (len(self._pending) >= MAX_PENDING
                                 or next(iter(self._pending.values())).expires <= now):
            self._pending.popitem(last=False)
        self._pending[state] = _Pending(nonce, verifier, now + PENDING_TTL)
        return url, state

    async def finish(self, params: Mapping[str, str], cookie_state: str | None) -> Identity:
        """Complete the sign-in the provider sent back (the callback's query ``params``)."""
        state = params.get("state") or ""
        # Only the browser that started the sign-in (it has the state's cookie) ends it.
        ours = bool(state) and cookie_state is not None and hmac.compare_digest(
            state.encode(), cookie_state.encode())
        pending = self._pending.pop(state, None) if ours else None
        if "error" in params:
            reason = params.get("error_description") or params["error"]
            raise SignInError(f"The identity provider did not sign you in: {reason}.", 403)
        if pending is None or pending.expires <= self._clock():
            raise SignInError("This sign-in was not started in this browser, was already "
                              "used, or took too long.")
        metadata = await self.metadata()
        if "iss" in params and params["iss"] != metadata["issuer"]:  # RFC 9207
            raise SignInError("The answer came from another identity provider.")
        if not params.get("code"):
            raise SignInError("The identity provider sent no authorization code.")
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    _endpoint(metadata, "token_endpoint"), grant_type="authorization_code",
                    code=params["code"], code_verifier=pending.verifier)
            except OAuthError as exc:
                raise SignInError(f"The identity provider refused the code: {exc.error}"
                                  f" ({exc.description}).") from exc
            except (httpx.HTTPError, ValueError) as exc:
                raise ProviderError(f"The identity provider's token endpoint failed: "
                                    f"{exc}") from exc
            if not isinstance(token.get("id_token"), str):
                raise ProviderError("The identity provider sent no ID token.")
            claims = dict(await self._id_token(token["id_token"], pending.nonce,
                                               token.get("access_token"), metadata))
            if metadata.get("userinfo_endpoint") and token.get("access_token"):
                claims = await self._with_userinfo(client, metadata, claims)
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> Identity:
        name = claims.get(self.username_claim)
        if not isinstance(name, str) or not name.strip():
            raise SignInError(f"The identity provider gave no {self.username_claim!r} for you.",
                              403)
        groups = claims.get(self.groups_claim) or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ProviderError(f"The identity provider's {self.groups_claim!r} is not a "
                                f"list of names.")
        emails = []
        if isinstance(claims.get("email"), str) and claims.get("email_verified") is not False:
            emails.append(claims["email"])
        return Identity(name.strip(), tuple(emails), tuple(groups), claims)

    async def _id_token(self, id_token: str, nonce: str, access_token: str | None,
                        metadata: dict[str, Any]) -> Mapping[str, Any]:
        decoder = JsonWebToken(list(ALGORITHMS))
        options = {"iss": {"essential": True, "value": metadata["issuer"]},
                   "sub": {"essential": True}}
        params = {"nonce": nonce, "client_id": self.client_id}
        if access_token:
            params["access_token"] = access_token
        for fresh in (False, True):  # a key not seen yet: the provider may have rotated
            keys = await self._jwks(metadata, fresh=fresh)
            try:
                claims = decoder.decode(id_token, JsonWebKey.import_key_set(keys),
                                        claims_cls=CodeIDToken, claims_options=options,
                                        claims_params=params)
                break
            except (JoseError, ValueError) as exc:
                if fresh or not _may_be_new_key(exc):
                    raise SignInError(f"The ID token did not validate: {exc}.") from exc
        try:
            claims.validate(leeway=LEEWAY)
        except JoseError as exc:
            raise SignInError(f"The ID token did not validate: {exc}.") from exc
        return claims

    async def _with_userinfo(self, client: AsyncOAuth2Client, metadata: dict[str, Any],
                             claims: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await client.get(_endpoint(metadata, "userinfo_endpoint"))
            response.raise_for_status()
            info = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"The identity provider's user-info endpoint failed: "
                                f"{exc}") from exc
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise ProviderError("The user-info endpoint answered for someone else.")
        return {**info, **claims}

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept for :data:`METADATA_TTL` seconds)."""
        if self._metadata is not None and self._metadata[0] > self._clock():
            return self._metadata[1]
        url = f"{self.issuer}/.well-known/openid-configuration"
        metadata = await self._get_json(url, "discovery document")
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            raise ProviderError(f"{url} names another issuer: {metadata.get('issuer')!r}.")
        self._metadata = (self._clock() + METADATA_TTL, metadata)
        return metadata

    async def _jwks(self, metadata: dict[str, Any], *, fresh: bool) -> dict[str, Any]:
        if not fresh and self._keys is not None and self._keys[0] > self._clock():
            return self._keys[1]
        keys = await self._get_json(_endpoint(metadata, "jwks_uri"), "keys")
        self._keys = (self._clock() + METADATA_TTL, keys)
        return keys

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"The identity provider's {what} could not be read "
                                f"from {url}: {exc}") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"The identity provider's {what} at {url} is not an object.")
        return data


def _endpoint(metadata: Mapping[str, Any], name: str) -> str:
    url = metadata.get(name)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ProviderError(f"The identity provider's metadata has no {name}.")
    return url


def _may_be_new_key(exc: Exception) -> bool:
    return not isinstance(exc, JoseError) or exc.error in ("bad_signature", "invalid_key")


#: what the app does with a signed-in identity: enrol the user if new, set the session
#: cookie on the response; a NotifierError (the database is down) is a 503 page
Complete = Callable[[Identity, Response], Awaitable[None]]


def create_router(signin: OidcSignIn, complete: Complete, *, public_url: str,
                  before: Callable[[Request], None] = lambda request: None) -> APIRouter:
    """The two sign-in routes, for ``signin``; ``complete`` starts the session.
    ``before(request)`` runs first (a rate limit: it raises to refuse)."""
    router = APIRouter(include_in_schema=False)
    secure = public_url.startswith("https://")

    @router.get("/signin/oidc")
    async def start(request: Request) -> Response:
        before(request)
        try:
            url, state = await signin.begin()
        except SignInError as exc:
            log.warning("OpenID Connect sign-in could not start: %s", exc)
            return failure_page(exc)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(STATE_COOKIE, state, max_age=PENDING_TTL, path=STATE_PATH,
                            httponly=True, samesite="lax", secure=secure)
        return response

    @router.get("/signin/oidc/callback")
    async def callback(request: Request) -> Response:
        before(request)
        try:
            identity = await signin.finish(request.query_params,
                                           request.cookies.get(STATE_COOKIE))
            response: Response = RedirectResponse(landing(public_url, request),
                                                  status_code=303)
            await complete(identity, response)
            log.info("%s signed in through OpenID Connect", identity.name)
        except SignInError as exc:
            log.info("OpenID Connect sign-in failed: %s", exc)
            response = failure_page(exc)
        except NotifierError as exc:
            log.error("OpenID Connect sign-in could not be completed: %s", exc)
            response = failure_page(exc, status=503)
        response.delete_cookie(STATE_COOKIE, path=STATE_PATH, httponly=True, samesite="lax",
                               secure=secure)
        return response

    return router


def failure_page(exc: NotifierError, status: int | None = None) -> Response:
    """A page saying why a sign-in failed, with a link to start again."""
    status = status or getattr(exc, "status", 400)
    detail = str(exc) if status != 503 else "The service cannot sign you in right now."
    response = pages.page("Sign-in failed", (
        f"<h1>Sign-in failed</h1><p>{html.escape(detail)}</p>"
        f"<p><a href='{STATE_PATH}'>Sign in again</a></p>"), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def router_for(ctx: ApiContext) -> APIRouter:
    """The service's sign-in routes, for ``[web] oidc_issuer``, ``client_id``, ..."""
    public_url = ctx.config.http.public_url()
    signin = OidcSignIn.from_config(ctx.config.web, public_url)

    async def complete(identity: Identity, response: Response) -> None:
        await run_in_threadpool(_enrol_and_start, ctx, identity, response)

    return create_router(signin, complete, public_url=public_url,
                         before=lambda request: limited(
                             ctx.address_limit.hit(client_address(request)),
                             "from this address"))


def _enrol_and_start(ctx: ApiContext, identity: Identity, response: Response) -> None:
    ctx.enrol(identity.name, emails=list(identity.emails), groups=list(identity.groups))
    start_session(ctx, response, identity.name, "oidc")
