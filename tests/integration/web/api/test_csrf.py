"""CSRF: a request made with the session cookie that changes state needs X-CSRF-Token.

The walk over every route (test_authorization.py) checks each unsafe method;
here, what a wrong token looks like, and that nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from notifier.web.api.auth import CSRF_HEADER
from tests.integration.web.conftest import Site

from .conftest import API, Browser, bearer, make_token

pytestmark = pytest.mark.integration

RULE = {"name": "mine", "track": {"kind": "topics", "patterns": ["org.example.*"]},
        "destinations": ["rss"]}


@pytest.mark.parametrize("given", [None, "", "wrong", "other session's"])
def test_a_cookie_without_the_right_csrf_token_changes_nothing(
        api_site: Site, browsers: Callable[[str], Browser], given: str | None) -> None:
    alice, again = browsers("alice"), browsers("alice")
    assert alice.csrf != again.csrf
    headers = {} if given is None else {
        CSRF_HEADER: again.csrf if given == "other session's" else given}
    for method, path, body in (("POST", "/rules", RULE), ("PUT", "/rules/mine", RULE),
                               ("DELETE", "/rules/mine", None), ("POST", "/tokens",
                                                                 {"name": "x"}),
                               ("POST", "/signout", None)):
        if method != "POST" or path != "/rules":
            api_site.store.upsert_rules([{**RULE, "user": "alice"}])
        answer = alice.client.request(method, API + path, json=body, headers=headers)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "CSRF token missing or wrong"
        api_site.store.remove_rule("alice", "mine")
    assert api_site.store.list_rules("alice") == []
    assert alice.client.get(f"{API}/tokens").json() == []
    assert alice.client.get(f"{API}/users/me").status_code == 200  # still signed in
    # positive control: the same request with the session's own token
    made = alice.send("POST", f"{API}/rules", json=RULE)
    assert made.status_code == 201, made.text


def test_safe_methods_and_tokens_need_no_csrf_token(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    assert alice.client.get(f"{API}/rules").status_code == 200
    token = make_token(api_site, "alice", "write")
    with api_site.client() as program:  # a program has no cookie to be tricked with
        assert program.post(f"{API}/rules", json=RULE, headers=bearer(token)).status_code \
            == 201


def test_the_csrf_token_comes_from_users_me_only_for_a_session(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    assert alice.client.get(f"{API}/users/me").json()["csrf_token"] == alice.csrf
    token = make_token(api_site, "alice")
    with api_site.client() as program:
        me = program.get(f"{API}/users/me", headers=bearer(token)).json()
    assert "csrf_token" not in me and me["via"] == "token" and me["scope"] == "read"
