"""The destinations page's browsers over HTTP, without JavaScript: the list, removing one,
the scripts as served, and the page of a service without Web Push."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.storage.push import PushSubscriptions
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.pushservice import PushService
from tests.integration.web.pages.conftest import PagesSite, sign_in, start_pages_site

pytestmark = pytest.mark.integration


@pytest.fixture
def push_site(tmp_path: Path, smtp: SmtpPeer) -> Iterator[PagesSite]:
    site, stop = start_pages_site(tmp_path, smtp, {"webpush": {
        "contact": "mailto:push-admin@example.org", "allow_private_endpoints": True}})
    try:
        yield PagesSite(site, smtp)
    finally:
        stop()


#: never started: only the form of its subscriptions is needed
SERVICE = PushService()


def subscribe(site: PagesSite, user: str, label: str) -> int:
    browser = SERVICE.browser(user)
    keys = browser.keys()
    return PushSubscriptions(site.store).add(user, SERVICE.endpoint(browser), keys["p256dh"],
                                             keys["auth"], label, allow_private=True).id


def test_the_browsers_are_listed_and_removed_without_javascript(push_site: PagesSite) -> None:
    first = subscribe(push_site, "alice", "Firefox on Linux")
    second = subscribe(push_site, "alice", "Chromium on Android")
    bobs = subscribe(push_site, "bob", "Bob's <b>browser</b>")
    alice, csrf = sign_in(push_site, "alice")
    bob, bob_csrf = sign_in(push_site, "bob")
    with alice, bob:
        page = alice.get("/destinations")
        assert page.status_code == 200
        # The button is there for the script, hidden until it shows it.
        assert re.search(r'<div id="push" hidden [^>]*data-worker="[^"]*/sw\.js"', page.text)
        assert 'src="http://' not in page.text and "/static/web/push.js" in page.text
        assert "Firefox on Linux" in page.text and "Chromium on Android" in page.text
        assert "Bob" not in page.text
        assert page.text.count('action="/destinations/browsers/remove"') == 2
        bobs_page = bob.get("/destinations").text
        assert "Bob&#39;s &lt;b&gt;browser&lt;/b&gt;" in bobs_page
        assert "<b>browser" not in bobs_page

        # Another user's browser is no one's to remove; a form without its token neither.
        assert bob.post("/destinations/browsers/remove", data={
            "csrf_token": bob_csrf, "id": first}).status_code == 404
        assert alice.post("/destinations/browsers/remove",
                          data={"id": first}).status_code == 403
        assert alice.post("/destinations/browsers/remove", data={
            "csrf_token": csrf, "id": "first"}).status_code == 400
        done = alice.post("/destinations/browsers/remove", data={"csrf_token": csrf,
                                                                "id": first})
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("/destinations")
        after = alice.get("/destinations").text
        assert "The browser is removed" in after
        assert "Firefox on Linux" not in after and "Chromium on Android" in after
    assert [s.id for s in PushSubscriptions(push_site.store).list("alice")] == [second]
    assert [s.id for s in PushSubscriptions(push_site.store).list("bob")] == [bobs]


def test_the_scripts_are_served_as_javascript(push_site: PagesSite) -> None:
    with push_site.client() as client:
        worker = client.get("/sw.js")
        assert worker.status_code == 200
        assert worker.headers["content-type"] == "text/javascript; charset=utf-8"
        assert worker.headers["cache-control"] == "no-cache"
        assert 'addEventListener("push"' in worker.text
        assert 'addEventListener("notificationclick"' in worker.text
        script = client.get("/static/web/push.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["x-content-type-options"] == "nosniff"


def test_without_web_push_the_page_says_so(pages_site: PagesSite) -> None:
    alice, _ = sign_in(pages_site, "alice")
    with alice:
        page = alice.get("/destinations").text
    assert 'id="push"' not in page
    assert "Web Push is not set up" in page
