"""The inbox's live stream, ``GET /api/v1/notifications/stream``, on the real server.

Who may open it (a session cookie, a token as Bearer or ``?token=``), what it
sends (counts first, then each new notification as the list shows it),
resuming after ``Last-Event-ID``, keep-alives, one database read per batch
whatever the number of streams, a slow reader dropped, and CORS with
credentials for the allowed origins only.
"""

from __future__ import annotations

import itertools
import socket
import time
from typing import Any

import httpx
import pytest

from notifier.storage.inbox import Inbox, inbox_row
from tests.conftest import wait_for
from tests.integration.outbox_rows import envelope
from tests.integration.web.conftest import Site
from tests.integration.web.sse import Event, EventStream

from .conftest import API, bearer, make_token, sign_in

pytestmark = pytest.mark.integration

STREAM = f"{API}/notifications/stream"
ORIGIN = "https://widget.example.org"
_n = itertools.count(1)


def notify(site: Site, *users: str, title: str = "", read: bool = False) -> list[int]:
    """One batch, as the ingest records it: a notification for each of ``users``; the hub
    is told. Returns the new rows' ids in order."""
    inbox = Inbox(site.store)
    before = inbox.newest_id()
    envelopes, rows = [], []
    for user in users:
        n = next(_n)
        envelopes.append(envelope(f"stream-{n}"))
        rows.append(inbox_row(
            user, f"stream-{n}", title=title or f"Build {n} failed",
            link=f"https://example.org/{n}", app="koji", topic="org.example.buildsys.build",
            severity="error", timestamp=time.time(), rules=["builds"], why={"builds": "owner"}))
    site.outbox.record_and_claim(envelopes, [], inbox=rows)
    site.web.on_recorded()
    items = inbox.after(before)
    if read:
        for item in items:
            inbox.mark(item.user, [item.id])
    return [item.id for item in items]


def open_stream(site: Site, query: str = "", headers: dict[str, str] | None = None,
                ) -> EventStream:
    """An inbox stream (subscribed once its opening event came: see :func:`opening`)."""
    stream = EventStream(f"{site.base}{STREAM}{query}", headers)
    assert stream.status == 200, stream.body
    return stream


def opening(stream: EventStream) -> Event:
    (first,) = stream.events(1, notifications_only=False)
    assert first.event == "counts" and first.retry == 2000, first
    return first


def listed(site: Site, token: str) -> list[dict[str, Any]]:
    with site.client(headers=bearer(token)) as client:
        answer = client.get(f"{API}/notifications")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def test_counts_first_then_each_new_notification_as_the_list_shows_it(api_site: Site) -> None:
    site = api_site
    notify(site, "alice", read=True)
    (kept,) = notify(site, "alice")
    token = make_token(site, "alice", "read")
    with open_stream(site, f"?token={token}") as stream:
        first = opening(stream)
        assert first.data == {"total": 2, "unread": 1} and first.id == kept
        assert stream.headers["content-type"].startswith("text/event-stream")
        alices, _ = notify(site, "alice", "bob")
        (event,) = stream.events(1)
        assert event.id == alices
        assert event.data == listed(site, token)[0]  # the very object the list gives
        assert event.data["title"].startswith("Build") and event.data["read"] is False
        notify(site, "bob")
        (mine,) = notify(site, "alice")
        assert [e.id for e in stream.events(1)] == [mine]  # and not bob's before it


def test_a_session_cookie_or_a_bearer_token_opens_it(api_site: Site) -> None:
    site = api_site
    notify(site, "bob")
    alice = sign_in(site, "alice")
    try:
        cookie = {"Cookie": f"notifier_session={alice.cookie}"}
        with open_stream(site, headers=cookie) as by_cookie, \
                open_stream(site, headers=bearer(make_token(site, "bob", "write"))) as bobs:
            assert opening(by_cookie).data == {"total": 0, "unread": 0}
            assert opening(bobs).data == {"total": 1, "unread": 1}
            (row,) = notify(site, "alice")
            assert [e.id for e in by_cookie.events(1)] == [row]
            assert bobs.pending() == []
    finally:
        alice.client.close()


@pytest.mark.parametrize(("query", "headers", "status", "field"), [
    ("", {}, 401, None),
    ("?token=ntfy_pat_" + "A" * 43, {}, 401, None),
    ("", {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, 401, None),
    ("", {"Cookie": "notifier_session=forged.value"}, 401, None),
    ("?since=yesterday", {"token": ""}, 400, "since"),
    ("", {"token": "", "Last-Event-ID": "12abc"}, 400, "Last-Event-ID"),
])
def test_refusals_are_problems(api_site: Site, query: str, headers: dict[str, str],
                               status: int, field: str | None) -> None:
    if "token" in headers:
        del headers["token"]
        headers.update(bearer(make_token(api_site, "alice")))
    with api_site.client() as client:
        answer = client.get(STREAM + query, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if field:
        assert answer.json()["errors"][0]["field"] == field
    assert api_site.web.hub.inbox.open_streams() == 0


def test_the_api_schema_documents_it(api_site: Site) -> None:
    with api_site.client() as client:
        spec = client.get(f"{API}/openapi.json").json()
    ok = spec["paths"][STREAM]["get"]["responses"]["200"]
    assert "text/event-stream" in ok["content"]


def test_resuming_after_last_event_id_or_since(api_site: Site) -> None:
    site = api_site
    token = make_token(site, "alice")
    (seen,) = notify(site, "alice")
    with open_stream(site, headers=bearer(token)) as stream:
        last = opening(stream).id
    assert last == seen
    missed = notify(site, "alice", "bob", "alice")
    missed = [i for i in missed if Inbox(site.store).get("alice", i)]
    with open_stream(site, headers={**bearer(token), "Last-Event-ID": str(last)}) as again:
        counts = opening(again)
        assert counts.data == {"total": 1, "unread": 1} and counts.id == last  # as it was then
        assert [e.id for e in again.events(2)] == missed
        (live,) = notify(site, "alice")
        assert [e.id for e in again.events(1)] == [live]
        assert again.pending() == []  # nothing twice
    with open_stream(site, f"?since={missed[0]}", bearer(token)) as since:
        assert opening(since).data == {"total": 2, "unread": 2}
        assert [e.id for e in since.events(2)] == [missed[1], live]


def test_an_idle_stream_gets_keep_alive_comments(api_site: Site) -> None:
    api_site.web.hub.inbox.heartbeat = 0.2
    with open_stream(api_site, headers=bearer(make_token(api_site, "alice"))) as stream:
        events = stream.events(3, notifications_only=False)
        assert events[0].event == "counts"
        assert [e.comment for e in events[1:]] == ["keep-alive", "keep-alive"]


def test_one_database_read_per_batch_however_many_streams(api_site: Site) -> None:
    site = api_site
    site.web.hub.inbox.poll_interval = 600.0  # only recorded batches wake the hub here
    tokens = {user: make_token(site, user) for user in ("alice", "bob", "carol")}
    streams = [(user, open_stream(site, headers=bearer(tokens[user])))
               for n in range(24) for user in [("alice", "bob", "carol")[n % 3]]]
    try:
        for _, stream in streams:
            opening(stream)
        before = len(site.statements.reading("inbox"))
        for _ in range(3):
            ids = dict(zip(("alice", "bob", "carol"), notify(site, "alice", "bob", "carol"),
                           strict=True))
            for user, stream in streams:
                assert [e.id for e in stream.events(1)] == [ids[user]]
        assert len(site.statements.reading("inbox")) - before == 3
    finally:
        for _, stream in streams:
            stream.close()


def test_a_reader_that_falls_behind_is_dropped(api_site: Site) -> None:
    site = api_site
    site.web.hub.inbox.queue_limit = 3
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(site.host_port)
    token = make_token(site, "alice")
    sock.sendall(f"GET {STREAM}?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_for(lambda: site.web.hub.inbox.open_streams() == 1, what="the stream to open")
    big = "x" * 200_000
    try:
        # Its socket's buffers fill, then its queue; then it is dropped, and costs no more.
        for _ in range(60):
            notify(site, "alice", title=big)
            if site.web.hub.inbox.open_streams() == 0:
                break
        wait_for(lambda: site.web.hub.inbox.open_streams() == 0, what="the slow stream to "
                 "be dropped", timeout=20)
        read_to_end(sock)  # the server closed the connection
    finally:
        sock.close()
    # The others go on.
    with open_stream(site, headers=bearer(token)) as stream:
        opening(stream)
        (row,) = notify(site, "alice")
        assert [e.id for e in stream.events(1)] == [row]


def read_to_end(sock: socket.socket) -> None:
    """Read until the server closes the connection (a reset counts); fails on a timeout."""
    sock.settimeout(10)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass


@pytest.mark.api(http={"allowed_origins": [ORIGIN]})
def test_cors_with_credentials_for_allowed_origins_on_the_stream(
        api_site: Site) -> None:
    site = api_site
    alice = sign_in(site, "alice")
    try:
        cookie = {"Cookie": f"notifier_session={alice.cookie}"}
        with open_stream(site, headers={**cookie, "Origin": ORIGIN}) as allowed:
            assert allowed.headers["access-control-allow-origin"] == ORIGIN
            assert allowed.headers["access-control-allow-credentials"] == "true"
            assert opening(allowed).data == {"total": 0, "unread": 0}
        # another origin's page does not open it with someone's cookie (see cors.py)
        with EventStream(f"{site.base}{STREAM}",
                         {**cookie, "Origin": "https://evil.example"}) as other:
            assert other.status == 403
            assert "access-control-allow-origin" not in other.headers
            assert "access-control-allow-credentials" not in other.headers
        with site.client() as client:
            preflight = client.options(STREAM, headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id"})
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-credentials"] == "true"
            refused = client.options(STREAM, headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
            assert "access-control-allow-origin" not in refused.headers
            # The rest of the API (but what the widget reads, see test_widget_origins.py):
            # no credentials for that origin, even with a cookie.
            me = client.get(f"{API}/users/me", headers={**cookie, "Origin": ORIGIN})
            assert me.status_code == 200
            assert me.headers["access-control-allow-origin"] == ORIGIN
            assert "access-control-allow-credentials" not in me.headers
            feed_stream = client.get("/users/alice/stream?token=nope",
                                     headers={"Origin": ORIGIN})
            assert "access-control-allow-credentials" not in feed_stream.headers
    finally:
        alice.client.close()


def test_a_stream_ends_when_the_server_stops(api_site: Site) -> None:
    stream = open_stream(api_site, headers=bearer(make_token(api_site, "alice")))
    try:
        opening(stream)
        api_site.halt()
        assert stream.ended.wait(10)
    finally:
        stream.close()
        api_site.run()  # the fixture stops it again
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{api_site.base}/healthz/live").status_code == 200


def test_a_stream_resuming_far_back_gets_the_newest_it_missed(api_site: Site) -> None:
    site = api_site
    site.web.hub.inbox.replay_limit = 2  # what a resuming stream holds at most
    token = make_token(site, "alice")
    missed = notify(site, "alice") + notify(site, "alice") + notify(site, "alice")
    with open_stream(site, headers={**bearer(token), "Last-Event-ID": "0"}) as stream:
        assert opening(stream).data == {"total": 0, "unread": 0}
        assert [e.id for e in stream.events(2)] == missed[1:]
        (live,) = notify(site, "alice")
        assert [e.id for e in stream.events(1)] == [live]
