"""Personal access tokens over HTTP: shown once, stored as hashes, listed, revoked at once,
scoped; they open the API as ``Authorization: Bearer``, and feeds and streams."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from notifier.storage.credentials import TOKEN_PREFIX, secret_hash
from tests.integration.web.conftest import Site
from tests.integration.web.sse import EventStream

from .conftest import API, Browser, bearer, make_token

pytestmark = pytest.mark.integration

RULE = {"name": "mine", "track": {"kind": "topics", "patterns": ["org.example.*"]},
        "destinations": ["rss"]}


def database_dump(site: Site) -> str:
    """Everything in the site's SQLite database, as SQL text (its WAL checkpointed first)."""
    url = str(site.store.engine.url)
    path = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def test_a_token_is_shown_once_and_stored_only_as_its_hash(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    made = alice.send("POST", f"{API}/tokens", json={"name": "desktop", "scope": "write"})
    assert made.status_code == 201, made.text
    body = made.json()
    secret = body.pop("token")
    assert re.fullmatch(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}", secret)
    assert body["name"] == "desktop" and body["scope"] == "write" and body["last_used"] is None
    listed = alice.client.get(f"{API}/tokens")
    assert listed.json() == [body]
    assert secret not in listed.text and "token" not in listed.json()[0]
    dump = database_dump(api_site)
    assert secret_hash(secret) in dump
    assert secret not in dump and secret[len(TOKEN_PREFIX):] not in dump


def test_tokens_are_listed_by_name_with_their_last_use(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    used, unused = (alice.send("POST", f"{API}/tokens", json={"name": name}).json()["token"]
                    for name in ("b used", "a unused"))
    with api_site.client() as program:
        assert program.get(f"{API}/rules", headers=bearer(used)).status_code == 200
    listed = alice.client.get(f"{API}/tokens").json()
    assert [t["name"] for t in listed] == ["a unused", "b used"]
    assert listed[0]["last_used"] is None
    assert isinstance(listed[1]["last_used"], float)
    assert listed[1]["last_used"] >= listed[1]["created_at"]
    assert unused


def test_bearer_tokens_open_the_api_and_a_revoked_one_stops_at_once(
        api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    made = alice.send("POST", f"{API}/tokens", json={"name": "laptop", "scope": "write"}).json()
    with api_site.client(headers=bearer(made["token"])) as program:
        me = program.get(f"{API}/users/me").json()
        assert (me["name"], me["via"], me["scope"]) == ("alice", "token", "write")
        assert program.post(f"{API}/rules", json=RULE).status_code == 201
        gone = alice.send("DELETE", f"{API}/tokens/{made['id']}")
        assert gone.status_code == 204
        refused = program.get(f"{API}/users/me")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert refused.headers["content-type"] == "application/problem+json"
    assert alice.client.get(f"{API}/tokens").json() == []
    assert alice.send("DELETE", f"{API}/tokens/{made['id']}").status_code == 404


def test_a_read_token_reads_and_is_refused_on_writes(api_site: Site) -> None:
    token = make_token(api_site, "alice", "read")
    with api_site.client(headers=bearer(token)) as program:
        assert program.get(f"{API}/rules").status_code == 200
        for method, path, body in (("POST", "/rules", RULE), ("PUT", "/rules/mine", RULE),
                                   ("DELETE", "/rules/mine", None)):
            api_site.store.upsert_rules([{**RULE, "user": "alice", "name": "mine"}])
            answer = program.request(method, API + path, json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert [r["name"] for r in api_site.store.list_rules("alice")] == ["mine"]


def test_tokens_do_not_make_tokens(api_site: Site) -> None:
    token = make_token(api_site, "alice", "write")
    with api_site.client(headers=bearer(token)) as program:
        answer = program.post(f"{API}/tokens", json={"name": "another", "scope": "write"})
        assert answer.status_code == 403
        assert program.get(f"{API}/tokens").status_code == 200


def test_malformed_authorization_is_401(api_site: Site) -> None:
    with api_site.client() as client:
        for header in ("Basic YWxpY2U6eA==", "Bearer", "Bearer  x", f"Bearer {TOKEN_PREFIX}x",
                       "Bearer not-a-token"):
            answer = client.get(f"{API}/users/me", headers={"Authorization": header})
            assert answer.status_code == 401, header
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_names_are_checked(api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    assert alice.send("POST", f"{API}/tokens", json={"name": "one"}).status_code == 201
    twice = alice.send("POST", f"{API}/tokens", json={"name": "one"})
    assert twice.status_code == 409 and twice.json()["errors"][0]["field"] == "name"
    bad = alice.send("POST", f"{API}/tokens", json={"name": "x", "scope": "admin"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "scope"


def feed(client: httpx.Client, user: str, **kw: object) -> httpx.Response:
    return client.get(f"/feeds/{user}.atom", **kw)  # type: ignore[arg-type]


def test_feeds_take_a_read_token_or_the_feed_token_but_not_another_users(
        api_site: Site) -> None:
    mine, write = make_token(api_site, "alice", "read"), make_token(api_site, "alice", "write")
    bobs = make_token(api_site, "bob", "read")
    with api_site.client() as client:
        for params in ({"token": api_site.token("alice")}, {"token": mine},
                       {"token": write}):
            answer = feed(client, "alice", params=params)
            assert answer.status_code == 200, params
            assert answer.headers["content-type"].startswith("application/atom+xml")
        assert feed(client, "alice", headers=bearer(mine)).status_code == 200
        for params in ({"token": bobs}, {"token": api_site.token("bob")},
                       {"token": mine + "x"}, {}):
            assert feed(client, "alice", params=params).status_code == 404, params
        assert feed(client, "alice", headers=bearer(bobs)).status_code == 404
        assert feed(client, "bob", params={"token": bobs}).status_code == 200
        api_site.web.api.credentials.revoke_token("alice", "token " + mine_number(api_site,
                                                                                  mine))
        assert feed(client, "alice", params={"token": mine}).status_code == 404


def mine_number(site: Site, secret: str) -> str:
    token = site.web.api.credentials.token(secret)
    assert token is not None
    return token.name.removeprefix("token ")


def test_streams_take_a_read_token_or_the_feed_token_but_not_another_users(
        api_site: Site) -> None:
    mine, bobs = make_token(api_site, "alice", "read"), make_token(api_site, "bob", "read")
    url = f"{api_site.base}/users/alice/stream"
    for query, headers in ((f"?token={mine}", None), ("", bearer(mine)),
                           (f"?token={api_site.token('alice')}", None)):
        with EventStream(url + query, headers=headers) as stream:
            assert stream.status == 200, (query, headers)
            assert stream.headers["content-type"].startswith("text/event-stream")
            (row,) = api_site.record("alice")
            (event,) = stream.events(1)
            assert event.id == row and event.data["msg_id"]
    for query, headers in ((f"?token={bobs}", None), ("", bearer(bobs)),
                           (f"?token={api_site.token('bob')}", None)):
        with EventStream(url + query, headers=headers) as refused:
            assert refused.status == 404, (query, headers)
