"""``GET /inbox/new``: the inbox's new items, in the page's own markup, for its script."""

from __future__ import annotations

import pytest

from notifier.storage.inbox import Inbox
from tests.integration.web.pages.conftest import PagesSite, sign_in

pytestmark = pytest.mark.integration


def test_new_items_are_the_callers_after_an_id_newest_first(pages_site: PagesSite) -> None:
    pages_site.notify("alice", 2)
    inbox = Inbox(pages_site.store)
    seen = inbox.last_id("alice")
    pages_site.notify("bob", 1)
    pages_site.notify("alice", 2, rule="tests")
    newest = inbox.last_id("alice")
    client, csrf = sign_in(pages_site, "alice")
    with client:
        page = client.get("/inbox")
        assert f'data-after="{seen + 3}"' in page.text and "data-live-list" in page.text
        answer = client.get("/inbox/new", params={"after": seen, "back": "/inbox?unread=1"})
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-type"].startswith("text/html")
        text = answer.text
        assert text.count('<li class="item unread') == 2
        assert text.index(f'id="n{newest}"') < text.index(f'id="n{newest - 1}"')
        assert "Build 1 of tests" in text and "of builds" not in text  # her new ones only
        assert text.count(f'name="csrf_token" value="{csrf}"') >= 4  # read, mute, snooze
        assert 'name="back" value="/inbox?unread=1"' in text
        assert f'href="/inbox/{newest}/why"' in text
        # The same markup as the page's own items.
        item = text[text.index(f'<li class="item unread severity-info" id="n{newest}"'):]
        item = item[:item.index("</li>") + 5]
        assert item.replace("/inbox?unread=1", "/inbox") in page.text
        # Another site's address is no way back.
        elsewhere = client.get("/inbox/new", params={"after": seen,
                                                     "back": "https://evil.example/"})
        assert "evil.example" not in elsewhere.text
        assert client.get("/inbox/new", params={"after": newest}).text.strip() == ""
        bad = client.get("/inbox/new", params={"after": "yesterday"})
        assert bad.status_code in (400, 422) and "after" in bad.text
    with pages_site.client() as stranger:
        refused = stranger.get("/inbox/new", params={"after": 0})
        assert refused.status_code == 303 and refused.headers["location"].endswith("/signin")


def test_older_pages_do_not_take_new_items(pages_site: PagesSite) -> None:
    pages_site.notify("alice", 30)
    client, _ = sign_in(pages_site, "alice")
    with client:
        first = client.get("/inbox")
        assert "data-live-list" in first.text
        cursor = first.text.split('rel="next" href="/inbox?cursor=')[1].split('"')[0]
        older = client.get(f"/inbox?cursor={cursor}")
        assert older.status_code == 200 and "data-live-list" not in older.text
        assert '<script src="/static/web/live.js"' in older.text
        script = client.get("/static/web/live.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert b"/api/v1/notifications/stream" in script.content
    with pages_site.client() as stranger:
        assert "live.js" not in stranger.get("/signin").text
