"""OpenID Connect sign-in on the real notifier HTTP server, with a real provider.

httpx plays the browser: it starts at ``/signin/oidc``, signs in at oidc-provider's
login page, comes back through the callback, and then uses the API with the session
cookie it was given.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from notifier.web.api.auth import COOKIE, CSRF_HEADER
from tests.integration.web.conftest import Site, start_site
from tests.integration.web.oidcpeer import ALICE, OidcPeer, sign_in_form

pytestmark = pytest.mark.integration


def sign_in(site: Site, client: httpx.Client, account: str = "alice") -> httpx.Response:
    return sign_in_form(client, f"{site.base}/signin/oidc", account,
                        f"{site.base}/signin/oidc/callback")


@pytest.mark.oidc(admins=["@qa"])
def test_first_sign_in_makes_the_user_and_a_session(oidc_site: tuple[Site, OidcPeer]) -> None:
    site, _ = oidc_site
    assert site.store.get_user("alice") is None
    with httpx.Client(timeout=10) as client:
        back = sign_in(site, client)
        assert back.status_code == 303 and back.headers["location"] == f"{site.base}/"
        cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
        assert cookie.path == "/" and not cookie.secure  # base_url is http here
        assert "httponly" in back.headers["set-cookie"].lower()
        me = client.get(f"{site.base}/api/v1/users/me")
        assert me.status_code == 200, me.text
        body = me.json()
        assert (body["name"], body["emails"], body["groups"]) == (
            "alice", [ALICE["email"]], ALICE["groups"])
        assert body["via"] == "session" and body["is_admin"] is True  # through @qa
        paths = client.get(f"{site.base}/api/v1/openapi.json").json()["paths"]
        assert not [p for p in paths if "signin" in p and "oidc" in p]  # not API routes
        # The session works for changes, with its CSRF token, and ends on sign-out.
        out = client.post(f"{site.base}/api/v1/signout",
                          headers={CSRF_HEADER: body["csrf_token"]})
        assert out.status_code == 204, out.text
        assert client.get(f"{site.base}/api/v1/users/me").status_code == 401
    user = site.store.get_user("alice")
    assert user is not None
    assert (user["emails"], user["groups"]) == ([ALICE["email"]], ALICE["groups"])


def test_signing_in_again_keeps_one_user(oidc_site: tuple[Site, OidcPeer]) -> None:
    site, _ = oidc_site
    for _ in range(2):
        with httpx.Client(timeout=10) as client:
            assert sign_in(site, client).status_code == 303
            assert client.get(f"{site.base}/api/v1/users/me").json()["name"] == "alice"
    assert [u["name"] for u in site.store.list_users()] == ["alice"]


def test_claims_without_email_or_groups_make_a_user_without_them(
        oidc_site: tuple[Site, OidcPeer]) -> None:
    site, _ = oidc_site
    with httpx.Client(timeout=10) as client:
        assert sign_in(site, client, "bob").status_code == 303
        body = client.get(f"{site.base}/api/v1/users/me").json()
    assert (body["name"], body["emails"], body["groups"], body["is_admin"]) == (
        "bob", [], [], False)
    user = site.store.get_user("bob")
    assert user is not None and not user.get("emails") and not user.get("groups")


def test_without_an_issuer_there_is_no_oidc_sign_in(tmp_path: Path) -> None:
    site, stop = start_site(tmp_path)
    try:
        with site.client() as client:
            assert client.get("/signin/oidc").status_code == 404
            assert client.get("/signin/oidc/callback?code=x&state=y").status_code == 404
    finally:
        stop()
