"""Sign-in links over HTTP: the GET shows a button and uses nothing; the POST signs in,
once; a link lasts 15 minutes."""

from __future__ import annotations

import pytest

from notifier.web.api.auth import COOKIE
from tests.integration.web.conftest import Site

from .conftest import API, credentials, link_secret, thread_safe_clock

pytestmark = pytest.mark.integration


def test_get_does_not_use_the_link_and_post_does_once(api_site: Site) -> None:
    secret = link_secret(api_site, "alice")
    with api_site.client() as scanner:  # a mail scanner opening links
        for _ in range(2):
            page = scanner.get(f"/signin/link/{secret}")
            assert page.status_code == 200 and "alice" in page.text
            assert "<form method='post'>" in page.text
            assert COOKIE not in page.headers.get("set-cookie", "")
        assert scanner.get(f"{API}/users/me").status_code == 401
    with api_site.client() as browser:
        used = browser.post(f"/signin/link/{secret}")
        assert used.status_code == 303
        assert used.headers["location"] == api_site.base + "/"
        assert browser.get(f"{API}/users/me").json()["name"] == "alice"
    with api_site.client() as thief:
        assert thief.get(f"/signin/link/{secret}").status_code == 404
        again = thief.post(f"/signin/link/{secret}")
        assert again.status_code == 404 and "has been used or has expired" in again.text
        assert COOKIE not in thief.cookies
        assert thief.get(f"{API}/users/me").status_code == 401


def test_a_link_lasts_15_minutes(api_site: Site) -> None:
    clock = thread_safe_clock(2_000_000_000.0)
    credentials(api_site).clock = clock
    early, late = link_secret(api_site, "alice"), link_secret(api_site, "bob")
    clock.advance(15 * 60 - 1)
    with api_site.client() as browser:
        assert browser.get(f"/signin/link/{early}").status_code == 200
        assert browser.post(f"/signin/link/{late}").status_code == 303  # positive control
        clock.advance(1)
        assert browser.get(f"/signin/link/{early}").status_code == 404
        assert browser.post(f"/signin/link/{early}").status_code == 404
        assert browser.get(f"{API}/users/me").json()["name"] == "bob"


def test_an_expired_row_and_an_unknown_link_sign_nobody_in(api_site: Site) -> None:
    expired = credentials(api_site).create_link("alice", ttl=-1)
    with api_site.client() as browser:
        for secret in (expired, "nonsense", expired[:-1]):
            assert browser.get(f"/signin/link/{secret}").status_code == 404
            assert browser.post(f"/signin/link/{secret}").status_code == 404
        assert COOKIE not in browser.cookies
