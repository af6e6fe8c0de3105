"""Who gets in, what they get, and what the logs keep: feeds, tokens, CORS, pages, health."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from notifier.storage.feeds import NewFeedItem
from notifier.users.fasjson import FasjsonSource
from tests.conftest import wait_for
from tests.integration.web.conftest import PUBLIC, Site, start_site
from tests.integration.web.sse import EventStream

pytestmark = pytest.mark.integration

ORIGIN = "https://apps.example.org"


@pytest.fixture
def directory_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[tuple[Site, list[str]]]:
    """A site with FASJSON configured; the names it would be asked about."""
    asked: list[str] = []

    def fetch(self: FasjsonSource, name: str) -> None:
        asked.append(name)
        return None

    monkeypatch.setattr(FasjsonSource, "fetch", fetch)
    site, stop = start_site(tmp_path, {"allowed_origins": [ORIGIN]},
                            fasjson={"url": "http://127.0.0.1:9/fasjson/", "auth": "none"})
    try:
        yield site, asked
    finally:
        stop()


def add_items(site: Site, user: str, n: int) -> None:
    from notifier.storage.feeds import FeedStore

    feeds = FeedStore(site.store.engine, 100, on_close=lambda: None,
                      write_lock=site.store.write_lock)
    feeds.add_many([NewFeedItem(user, f"m{k}", f"item {k}", f"<p>{k}</p>") for k in range(n)])


def test_unknown_users_and_wrong_tokens_cost_no_write_no_directory_call_and_look_alike(
        directory_site: tuple[Site, list[str]]) -> None:
    site, asked = directory_site
    token = site.token("alice")
    answers = []
    with site.client() as client:
        for path in ("/feeds/nobody.atom?token=x", f"/feeds/nobody.atom?token={token}",
                     "/feeds/alice.atom?token=x", "/feeds/alice.atom", "/feeds/alice.rss?token=",
                     "/users/nobody/stream?token=x", "/users/alice/stream?token=wrong",
                     "/users/alice/stream", "/feeds/nobody.json?token=x"):
            response = client.get(path)
            answers.append((response.status_code, response.content,
                            response.headers["content-type"]))
        assert set(answers) == {(404, b"not found\n", "text/plain; charset=utf-8")}
        assert client.get("/nowhere").content == b"not found\n"
        assert asked == []
        assert site.statements.writes() == []
        # The unknown name is remembered: asking again reads nothing.
        before = len(site.statements.reading("users"))
        assert before > 0, "the first asks read nothing: the counts here would prove nothing"
        for _ in range(3):
            assert client.get("/feeds/nobody.atom?token=x").status_code == 404
        assert len(site.statements.reading("users")) == before
        assert client.get(f"/feeds/alice.atom?token={token}").status_code == 200
    assert asked == [] and site.statements.writes() == []
    # The directory is asked where it should be (a name the pipeline meets): the empty
    # list above means something.
    assert site.users.get("zed") is None
    assert asked == ["zed"]


def test_a_user_added_after_start_is_found_in_the_database(site: Site) -> None:
    site.store.import_users([{"name": "dave", "emails": [], "ircnicks": [], "groups": []}])
    with site.client() as client:
        assert client.get(f"/feeds/dave.atom?token={site.token('dave')}").status_code == 200


def test_the_feed_has_validators_and_its_token_only_in_the_self_link(site: Site) -> None:
    add_items(site, "alice", 3)
    token = site.token("alice")
    with site.client() as client:
        for fmt, kind in (("atom", "application/atom+xml"), ("rss", "application/rss+xml")):
            response = client.get(f"/feeds/alice.{fmt}?token={token}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(kind)
            parsed = feedparser.parse(response.content)
            assert parsed.bozo == 0
            assert [e.title for e in parsed.entries] == ["item 2", "item 1", "item 0"]
            assert response.content.count(token.encode()) == 1
            self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
            assert self_links == [f"{PUBLIC}/feeds/alice.{fmt}?token={token}"]
            if fmt == "atom":
                assert parsed.feed.id == f"{PUBLIC}/feeds/alice.atom"
            assert parsed.feed.link == f"{PUBLIC}/"
            again = client.get(f"/feeds/alice.{fmt}?token={token}",
                               headers={"If-None-Match": response.headers["ETag"]})
            assert again.status_code == 304 and again.content == b""
            since = client.get(f"/feeds/alice.{fmt}?token={token}",
                               headers={"If-Modified-Since": response.headers["Last-Modified"]})
            assert since.status_code == 304
        add_items(site, "alice", 4)
        changed = client.get(f"/feeds/alice.atom?token={token}",
                             headers={"If-None-Match": response.headers["ETag"]})
        assert changed.status_code == 200


def test_cors_headers_for_allowed_origins_only(
        directory_site: tuple[Site, list[str]]) -> None:
    site, _ = directory_site
    token = site.token("alice")
    with site.client() as client:
        allowed = client.get(f"/feeds/alice.atom?token={token}", headers={"Origin": ORIGIN})
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        other = client.get(f"/feeds/alice.atom?token={token}",
                           headers={"Origin": "https://evil.example.com"})
        assert other.status_code == 200
        assert not [h for h in other.headers if h.startswith("access-control-")]
        preflight = client.options(f"/users/alice/stream?token={token}", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        refused = client.options(f"/users/alice/stream?token={token}", headers={
            "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in refused.headers
    stream = EventStream(f"{site.base}/users/alice/stream?token={token}", {"Origin": ORIGIN})
    try:
        assert stream.headers["access-control-allow-origin"] == ORIGIN
    finally:
        stream.close()
    stream = EventStream(f"{site.base}/users/alice/stream?token={token}",
                         {"Origin": "https://evil.example.com"})
    try:
        assert "access-control-allow-origin" not in stream.headers
    finally:
        stream.close()


def test_no_cors_headers_without_allowed_origins(site: Site) -> None:
    with site.client() as client:
        response = client.get(f"/feeds/alice.atom?token={site.token('alice')}",
                              headers={"Origin": ORIGIN})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


def test_tokens_never_reach_the_logs(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    feed_token = site.token("alice")
    unsubscribe_token = "good"  # what the test's unsubscribe accepts
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    with site.client() as client:
        client.get(f"/feeds/alice.atom?token={feed_token}")
        client.get(f"/feeds/alice.atom?token={feed_token}x")
        client.get(f"/feeds/nobody.atom?token={feed_token}")
        client.get(f"/unsubscribe/{unsubscribe_token}")
        client.post(f"/unsubscribe/{unsubscribe_token}", content=b"List-Unsubscribe=One-Click")
        client.get(f"/users/alice/stream?token={feed_token}&since=x")
        with client.stream("GET", f"/users/alice/stream?token={feed_token}") as response:
            assert response.status_code == 200
        sock = site.connect()
        sock.sendall(f"GET /feeds/alice.atom?token={feed_token} HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: -1\r\n\r\n".encode())
        sock.recv(1000)
        sock.close()
    # The server's log lines (this test's own HTTP client logs its URLs, tokens included).
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith("uvicorn") for r in records), \
        "the server logged nothing: the check below would prove nothing"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in records)
    assert feed_token not in text
    assert "/unsubscribe/good" not in text
    assert not [r for r in records if r.name == "uvicorn.access"]


def test_home_page_and_health(site: Site) -> None:
    with site.client() as client:
        home = client.get("/")
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
        assert "Your notification settings" in home.text
        for path, kind in (("/healthz", "ready"), ("/healthz/ready", "ready"),
                           ("/healthz/live", "live")):
            assert client.get(path).json() == {"status": kind}
            assert client.get(path).status_code == 200
        site.healthy["ready"] = False
        assert client.get("/healthz").status_code == 503
        assert client.get("/healthz/ready").status_code == 503
        assert client.get("/healthz/live").status_code == 200
        assert client.get("/healthz/other").status_code == 404
        metrics = client.get("/metrics").text
        assert metrics.startswith("# service metrics\n") and "notifier_streams_open" in metrics
        assert "/feeds/" not in client.get("/api/v1/openapi.json").text


def test_unsubscribe_page_and_one_click(site: Site) -> None:
    with site.client() as client:
        page = client.get("/unsubscribe/good")
        assert page.status_code == 200 and "Disable the rule" in page.text
        assert client.get("/unsubscribe/bad").status_code == 404
        done = client.post("/unsubscribe/good", data={"List-Unsubscribe": "One-Click"})
        assert done.text == "Rule 'git' of alice is now disabled.\n"
        assert client.post("/unsubscribe/bad", content=b"x").status_code == 404


def test_the_part_stops_with_streams_open_and_runs_again(site: Site) -> None:
    stream = EventStream(f"{site.base}/users/alice/stream?token={site.token('alice')}")
    try:
        wait_for(lambda: site.web.hub.open_streams() == 1, what="the stream to open")
        site.halt()  # returns although a stream was open
        wait_for(stream.ended.is_set, what="the stream to end")
    finally:
        stream.close()
    site.run()  # the same part, the same socket
    with open_stream_of(site, "alice") as again:
        (row,) = site.record("alice")
        assert [e.id for e in again.events(1)] == [row]


def open_stream_of(site: Site, user: str) -> EventStream:
    stream = EventStream(f"{site.base}/users/{user}/stream?token={site.token(user)}")
    wait_for(lambda: site.web.hub.open_streams() == 1, what="the stream to open")
    return stream
