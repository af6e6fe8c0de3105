"""The OpenID Connect code flow of notifier.web.oidc against a real provider.

The sign-in routes are served by uvicorn on a free port, in an application of
their own whose ``complete`` records who signed in and sets a cookie, and a real
oidc-provider (Node.js) signs people in through its development login page,
driven by httpx. What the service makes of an identity (a user, a session) is
tested with the whole server in test_oidc_signin.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response

from notifier.errors import StorageUnavailableError
from notifier.web.oidc import Identity, OidcSignIn, create_router
from tests.conftest import free_port, wait_for
from tests.integration.web.oidcpeer import ALICE, CLIENT_ID, OidcPeer, provider_answer, sign_in_form

pytestmark = pytest.mark.integration


@dataclass
class App:
    base: str
    signin: OidcSignIn
    signed_in: list[Identity] = field(default_factory=list)
    storage_down: bool = False

    @property
    def callback(self) -> str:
        return f"{self.base}/signin/oidc/callback"

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=10)


def serve(app: FastAPI, port: int) -> Callable[[], None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="the sign-in application to listen")

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return stop


def start_app(issuer: str, port: int, **kw: str) -> tuple[App, Callable[[], None]]:
    base = f"http://127.0.0.1:{port}"
    signin = OidcSignIn(issuer, CLIENT_ID, "a-client-secret-for-tests-only",
                        f"{base}/signin/oidc/callback", **kw)
    app = App(base, signin)

    async def complete(identity: Identity, response: Response) -> None:
        if app.storage_down:
            raise StorageUnavailableError("the database is down")
        app.signed_in.append(identity)
        response.set_cookie("session", identity.name)

    api = FastAPI()
    api.include_router(create_router(signin, complete, public_url=base))
    return app, serve(api, port)


@pytest.fixture
def make_app(oidc_peer: Callable[..., OidcPeer]) -> Iterator[Callable[..., tuple[App, OidcPeer]]]:
    stops: list[Callable[[], None]] = []

    def make(**kw: str) -> tuple[App, OidcPeer]:
        port = free_port()
        peer = oidc_peer(f"http://127.0.0.1:{port}/signin/oidc/callback")
        app, stop = start_app(peer.issuer, port, **kw)
        stops.append(stop)
        return app, peer

    yield make
    for stop in stops:
        stop()


def test_alice_signs_in_with_her_claims(make_app: Callable[..., tuple[App, OidcPeer]]) -> None:
    app, peer = make_app()
    with app.client() as client:
        start = client.get(f"{app.base}/signin/oidc")
        assert start.status_code == 303
        location = httpx.URL(start.headers["location"])
        assert str(location).startswith(f"{peer.issuer}/auth")
        assert location.params["code_challenge_method"] == "S256"
        assert location.params["redirect_uri"] == app.callback
        assert set(location.params["scope"].split()) == {"openid", "profile", "email"}
        assert location.params["nonce"] and location.params["state"]
        back = sign_in_form(client, f"{app.base}/signin/oidc", "alice", app.callback)
        assert back.status_code == 303, back.text
        assert back.headers["location"] == f"{app.base}/"
        assert back.cookies["session"] == "alice"
    [alice] = app.signed_in
    assert (alice.name, alice.emails, alice.groups) == (
        "alice", (ALICE["email"],), tuple(ALICE["groups"]))
    assert alice.claims["iss"] == peer.issuer and alice.claims["aud"] == CLIENT_ID


def test_a_callback_is_used_once_and_only_by_its_browser(
        make_app: Callable[..., tuple[App, OidcPeer]]) -> None:
    app, _ = make_app()
    with app.client() as client:
        back = sign_in_form(client, f"{app.base}/signin/oidc", "alice", app.callback)
        assert back.status_code == 303
        again = client.get(back.url)
    assert again.status_code == 400
    assert "already used" in again.text and "Sign in again" in again.text
    with app.client() as browser, app.client() as other:
        # The provider's answer for one browser, taken to another one.
        answer = provider_answer(browser, f"{app.base}/signin/oidc", "alice", app.callback)
        stolen = other.get(answer)
        assert stolen.status_code == 400
        assert browser.get(answer).status_code == 303  # still good where it started
    assert len(app.signed_in) == 2


def test_a_refusal_at_the_provider_is_a_page_saying_so(
        make_app: Callable[..., tuple[App, OidcPeer]]) -> None:
    app, peer = make_app()
    with app.client() as client:
        start = client.get(f"{app.base}/signin/oidc")
        login = client.get(start.headers["location"])
        while login.is_redirect:
            login = client.get(httpx.URL(str(login.url)).join(login.headers["location"]))
        abort = client.get(f"{login.url}/abort")  # its "Cancel" link
        while abort.is_redirect and not str(abort.url).startswith(app.callback):
            abort = client.get(httpx.URL(str(abort.url)).join(abort.headers["location"]))
    assert abort.status_code == 403
    assert abort.headers["content-type"].startswith("text/html")
    assert "did not sign you in" in abort.text and "aborted" in abort.text
    assert app.signed_in == []


def test_a_provider_that_is_down_is_a_502_page(tmp_path: Path) -> None:
    app, stop = start_app(f"http://127.0.0.1:{free_port()}", free_port())
    try:
        with app.client() as client:
            response = client.get(f"{app.base}/signin/oidc")
    finally:
        stop()
    assert response.status_code == 502
    assert "could not be read" in response.text and "Traceback" not in response.text


def test_a_missing_username_claim_refuses_the_sign_in(
        make_app: Callable[..., tuple[App, OidcPeer]]) -> None:
    app, _ = make_app(username_claim="nickname")
    with app.client() as client:
        back = sign_in_form(client, f"{app.base}/signin/oidc", "alice", app.callback)
    assert back.status_code == 403 and "gave no &#x27;nickname&#x27;" in back.text
    assert app.signed_in == []


def test_a_database_that_is_down_is_a_503_page(
        make_app: Callable[..., tuple[App, OidcPeer]]) -> None:
    app, _ = make_app()
    app.storage_down = True
    with app.client() as client:
        back = sign_in_form(client, f"{app.base}/signin/oidc", "alice", app.callback)
    assert back.status_code == 503 and "cannot sign you in right now" in back.text
    assert "session" not in back.cookies


def test_new_provider_keys_are_fetched_when_a_token_needs_them(
        make_app: Callable[..., tuple[App, OidcPeer]],
        oidc_peer: Callable[..., OidcPeer]) -> None:
    app, peer = make_app()
    with app.client() as client:
        assert sign_in_form(client, f"{app.base}/signin/oidc", "alice",
                            app.callback).status_code == 303
    old_keys = httpx.get(f"{peer.issuer}/jwks").json()
    # The provider restarts with keys of its own; notifier still holds the old ones.
    peer.stop()
    again = oidc_peer(app.callback, port=peer.port)
    assert httpx.get(f"{again.issuer}/jwks").json() != old_keys
    with app.client() as client:
        back = sign_in_form(client, f"{app.base}/signin/oidc", "alice", app.callback)
    assert back.status_code == 303, back.text
    assert [i.name for i in app.signed_in] == ["alice", "alice"]
