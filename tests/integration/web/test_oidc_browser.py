"""OpenID Connect sign-in once end to end, in a real browser.

Debian's chromium, headless, driven by Playwright (never a browser Playwright
downloads), opens notifier's ``/signin/oidc``, signs in at oidc-provider's own login
page as alice, comes back to notifier, and reads ``/api/v1/users/me`` with the
session the browser got. Without chromium the test is skipped, and fails under
CI=true.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from notifier.web.api.auth import COOKIE
from tests.conftest import IN_CI
from tests.integration.web.conftest import Site
from tests.integration.web.oidcpeer import ALICE, OidcPeer

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
#: milliseconds the browser waits for a page or an element
WAIT_MS = 30_000


@pytest.fixture
def browser() -> Iterator[BrowserContext]:
    """A fresh browser profile in Debian's chromium, headless."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (dev/setup installs Debian's chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = chromium.new_context()
            context.set_default_timeout(WAIT_MS)
            yield context
        finally:
            chromium.close()


def test_alice_signs_in_with_a_browser(oidc_site: tuple[Site, OidcPeer],
                                       browser: BrowserContext) -> None:
    site, peer = oidc_site
    page = browser.new_page()

    page.goto(f"{site.base}/signin/oidc")
    assert page.url.startswith(f"{peer.issuer}/interaction/"), page.url
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{peer.issuer}/interaction/**")  # the consent page
    with page.expect_navigation(url=f"{site.base}/"):
        page.click("button[type=submit]")
    assert "Notifications" in page.title()

    cookies = {c["name"]: c for c in browser.cookies(site.base)}
    assert cookies[COOKIE]["httpOnly"] and cookies[COOKIE]["sameSite"] == "Lax"
    response = page.goto(f"{site.base}/api/v1/users/me")
    assert response is not None and response.status == 200, page.content()
    me = json.loads(page.inner_text("body"))
    assert (me["name"], me["groups"], me["emails"], me["via"]) == (
        "alice", ALICE["groups"], [ALICE["email"]], "session")
    user = site.store.get_user("alice")
    assert user is not None
    assert (user["groups"], user["emails"]) == (ALICE["groups"], [ALICE["email"]])
