"""Sessions over HTTP: the cookie's flags, sign-out that revokes on the server, expiry."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import select

from notifier.storage.schema import sessions
from notifier.web.api.auth import COOKIE, CSRF_HEADER
from tests.integration.web.conftest import Site

from .conftest import API, Browser, credentials, link_secret, thread_safe_clock

pytestmark = pytest.mark.integration


def rows(site: Site) -> list[object]:
    with site.store.engine.connect() as conn:
        return list(conn.execute(select(sessions.c.id)))


def session_cookie(site: Site) -> tuple[str, dict[str, str], str]:
    """Sign alice in by a link; the session cookie's value, its attributes, and the raw header."""
    secret = link_secret(site, "alice")
    with site.client() as client:
        answer = client.post(f"/signin/link/{secret}")
    assert answer.status_code == 303
    (header,) = [h for h in answer.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie[COOKIE]
    return morsel.value, {k: str(v) for k, v in morsel.items() if v}, header


def test_the_session_cookie_is_httponly_lax_and_not_secure_over_http(api_site: Site) -> None:
    value, flags, header = session_cookie(api_site)
    assert flags["httponly"] is not None and "httponly" in header.lower()
    assert flags["samesite"].lower() == "lax"
    assert "secure" not in flags and "secure" not in header.lower()
    assert flags["path"] == "/"
    assert int(flags["max-age"]) == 14 * 86400
    with api_site.client(cookies={COOKIE: value}) as client:
        assert client.get(f"{API}/users/me").json()["name"] == "alice"


@pytest.mark.api(http={"base_url": "https://notify.example.org"}, web={"session_ttl": "2h"})
def test_the_session_cookie_is_secure_when_the_site_is_https(api_site: Site) -> None:
    value, flags, header = session_cookie(api_site)
    assert "secure" in flags and "; secure" in header.lower()
    assert "httponly" in header.lower() and flags["samesite"].lower() == "lax"
    assert int(flags["max-age"]) == 7200
    # the server itself takes the cookie however it came (TLS ends in front of it)
    with api_site.client(cookies={COOKIE: value}) as client:
        assert client.get(f"{API}/users/me").json()["name"] == "alice"


def test_sign_out_revokes_the_session_on_the_server(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    other = browsers("alice")  # another browser of hers stays signed in
    old = alice.cookie
    assert len(rows(api_site)) == 2
    out = alice.send("POST", f"{API}/signout")
    assert out.status_code == 204
    cleared = [h for h in out.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    assert cleared and ('max-age=0' in cleared[0].lower() or "expires=" in cleared[0].lower())
    assert alice.client.get(f"{API}/users/me").status_code == 401
    # the old cookie, replayed, no longer signs anyone in
    with api_site.client(cookies={COOKIE: old}) as replay:
        again = replay.get(f"{API}/users/me")
        assert again.status_code == 401
        assert again.json()["detail"] == "the session has ended; sign in again"
        assert replay.post(f"{API}/signout", headers={CSRF_HEADER: alice.csrf}).status_code \
            == 401
    assert len(rows(api_site)) == 1
    assert other.client.get(f"{API}/users/me").json()["name"] == "alice"


def test_a_session_expires(api_site: Site, browsers: Callable[[str], Browser]) -> None:
    clock = thread_safe_clock(2_000_000_000.0)
    credentials(api_site).clock = clock
    alice = browsers("alice")
    clock.advance(14 * 86400 - 1)
    assert alice.client.get(f"{API}/users/me").status_code == 200
    clock.advance(1)
    expired = alice.client.get(f"{API}/users/me")
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"].startswith("Bearer")
    assert alice.send("POST", f"{API}/rules", json={}).status_code == 401


def test_a_forged_cookie_is_refused(api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    secret, _, signature = alice.cookie.rpartition(".")
    other = "y" if signature[0] == "x" else "x"  # a changed signature, whatever it was
    with api_site.client(cookies={COOKIE: f"{secret}.{other}{signature[1:]}"}) as forged:
        assert forged.get(f"{API}/users/me").status_code == 401
    with api_site.client(cookies={COOKIE: secret}) as bare:
        assert bare.get(f"{API}/users/me").status_code == 401
    with api_site.client(cookies={COOKIE: alice.cookie}) as copied:  # positive control
        assert copied.get(f"{API}/users/me").status_code == 200
