"""What ``<notifier-inbox>`` needs over HTTP: its script, and CORS with credentials for
``[http] allowed_origins`` only; a session cookie from any other origin is refused.

The browser side (chromium on pages of other origins) is in
``tests/integration/web/pages/test_widget_browser.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.web.api.conftest import API, Browser, bearer, make_token
from tests.integration.web.conftest import Site

pytestmark = [pytest.mark.integration,
              pytest.mark.api(http={"allowed_origins": ["https://apps.example.org"]})]

ALLOWED = "https://apps.example.org"
OTHER = "https://evil.example.com"
WIDGET_ROUTES = (f"{API}/notifications?limit=10", f"{API}/notifications/counts")


def cors_headers(response: object) -> dict[str, str]:
    return {k: v for k, v in response.headers.items()  # type: ignore[attr-defined]
            if k.startswith("access-control-")}


def test_the_script_is_served_for_other_origins_to_load(api_site: Site) -> None:
    with api_site.client() as client:
        script = client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert 'customElements.define(TAG, NotifierInbox)' in script.text
    assert 'const TAG = "notifier-inbox"' in script.text


def test_an_allowed_origin_reads_the_inbox_with_the_session_cookie(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    for path in WIDGET_ROUTES:
        answer = alice.send("GET", path, headers={"Origin": ALLOWED})
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == ALLOWED
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in answer.headers["vary"]
    counts = alice.send("GET", f"{API}/notifications/counts", headers={"Origin": ALLOWED})
    assert counts.json() == {"total": 0, "unread": 0}


def test_an_allowed_origin_may_send_a_token_after_a_preflight(api_site: Site) -> None:
    token = make_token(api_site, "alice", "read")
    with api_site.client() as client:
        preflight = client.options(f"{API}/notifications?limit=10", headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert preflight.headers["access-control-allow-credentials"] == "true"
        answer = client.get(f"{API}/notifications?limit=10",
                            headers={"Origin": ALLOWED, **bearer(token)})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == ALLOWED
        refused = client.options(f"{API}/notifications?limit=10", headers={
            "Origin": OTHER, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert not cors_headers(refused)
        # a POST is not what an allowed origin may send either
        post = client.options(f"{API}/notifications/read-all", headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
        assert post.status_code == 400
        assert "POST" not in post.headers.get("access-control-allow-methods", "")


def test_other_routes_give_an_allowed_origin_nothing_read_with_the_cookie(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    # /users/me tells the CSRF token: no other site may read it with the cookie
    alice = browsers("alice")
    me = alice.send("GET", f"{API}/users/me", headers={"Origin": ALLOWED})
    assert me.status_code == 200
    assert "access-control-allow-credentials" not in me.headers


def test_the_session_cookie_from_an_origin_not_allowed_is_refused(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    for path in (*WIDGET_ROUTES, f"{API}/users/me", f"{API}/notifications/stream"):
        answer = alice.send("GET", path, headers={"Origin": OTHER})
        assert answer.status_code == 403, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert OTHER in answer.json()["detail"]
        assert not cors_headers(answer)
    for origin in ("null", "http://127.0.0.1:1"):
        answer = alice.send("GET", f"{API}/notifications", headers={"Origin": origin})
        assert answer.status_code == 403
    # nothing was done: the CSRF token alone does not carry a request from elsewhere
    read_all = alice.send("POST", f"{API}/notifications/read-all", json={"up_to": 1},
                          headers={"Origin": OTHER})
    assert read_all.status_code == 403
    assert "Origin not allowed" in read_all.text


def test_the_services_own_pages_and_callers_without_origin_are_served(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    own = api_site.base
    assert alice.send("GET", f"{API}/notifications", headers={"Origin": own}).status_code == 200
    read_all = alice.send("POST", f"{API}/notifications/read-all", json={"up_to": 1},
                          headers={"Origin": own})
    assert read_all.status_code == 200, read_all.text
    assert alice.send("GET", f"{API}/notifications").status_code == 200
    # a token is no ambient credential: the server answers it, without CORS headers
    token = make_token(api_site, "alice", "read")
    with api_site.client() as client:
        answer = client.get(f"{API}/notifications", headers={"Origin": OTHER, **bearer(token)})
    assert answer.status_code == 200
    assert not cors_headers(answer)
    # the pages are not the API: another origin's link to one still shows it
    page = alice.send("GET", "/inbox", headers={"Origin": OTHER})
    assert page.status_code == 200
