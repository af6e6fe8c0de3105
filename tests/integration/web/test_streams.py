"""Live streams on the real server: where they start, resuming, one read per batch."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import wait_for
from tests.integration.web.conftest import Site
from tests.integration.web.sse import EventStream

pytestmark = pytest.mark.integration


def open_stream(site: Site, user: str, query: str = "", headers: dict[str, str] | None = None,
                subscribers: int | None = None) -> EventStream:
    """A stream of ``user``, once the hub counts it (``subscribers`` open in all)."""
    expected = (subscribers or 0) or site.web.hub.open_streams() + 1
    stream = EventStream(f"{site.base}/users/{user}/stream?token={site.token(user)}{query}",
                         headers)
    assert stream.status == 200, stream.body
    wait_for(lambda: site.web.hub.open_streams() >= expected, what="the stream to open")
    return stream


def test_a_stream_without_last_event_id_starts_now(site: Site) -> None:
    (before,) = site.record("alice")  # recorded while no stream was open
    with open_stream(site, "alice") as stream:
        (first,) = stream.events(1, notifications_only=False)
        assert first.retry == 2000 and first.id == before  # it opens after that row
        (now,) = site.record("alice")
        (event,) = stream.events(1)
        assert event.id == now
        assert event.data["msg_id"] and event.data["topic"].endswith("update.comment")
        assert stream.headers["content-type"].startswith("text/event-stream")


def test_since_starts_after_that_row(site: Site) -> None:
    first = site.record("alice")[0]
    rest = [site.record("alice", "bob")[0] for _ in range(3)]
    with open_stream(site, "alice", f"&since={first}") as stream:
        assert [e.id for e in stream.events(3)] == rest
        (live,) = site.record("alice")
        assert [e.id for e in stream.events(1)] == [live]


def test_last_event_id_wins_over_since(site: Site) -> None:
    ids = [site.record("alice")[0] for _ in range(4)]
    with open_stream(site, "alice", f"&since={ids[0]}",
                     headers={"Last-Event-ID": str(ids[2])}) as stream:
        assert [e.id for e in stream.events(1)] == [ids[3]]


@pytest.mark.parametrize("query, headers", [("&since=-1", {}), ("&since=abc", {}),
                                            ("", {"Last-Event-ID": "x1"})])
def test_a_bad_start_is_a_400(site: Site, query: str, headers: dict[str, str]) -> None:
    stream = EventStream(f"{site.base}/users/alice/stream?token={site.token('alice')}{query}",
                         headers)
    assert stream.status == 400
    stream.close()


def test_resuming_with_last_event_id_misses_nothing_and_repeats_nothing(site: Site) -> None:
    recorded: list[int] = []
    done = threading.Event()

    def write() -> None:
        for n in range(120):
            # alice's rows among others', in batches of one to three.
            users = ["alice", "bob", "carol"][: n % 3 + 1]
            ids = site.record(*users)
            recorded.append(ids[0])
            time.sleep(0.005)  # pacing the writer, not waiting for anything
        done.set()

    writer = threading.Thread(target=write)
    stream = open_stream(site, "alice", "&since=0")
    writer.start()
    received: list[int] = []
    try:
        for _ in range(4):  # read some, drop the connection, come back where we were
            received += [e.id for e in stream.events(15)]  # type: ignore[misc]
            stream.close()
            wait_for(lambda: site.web.hub.open_streams() == 0, what="the stream to close")
            stream = open_stream(site, "alice", "&since=0",
                                 headers={"Last-Event-ID": str(received[-1])})
        writer.join(30)
        assert done.is_set()
        # What comes before a last row, recorded now, is all the stream had to send.
        (last,) = site.record("alice")
        while not received or received[-1] != last:
            received += [e.id for e in stream.events(1)]  # type: ignore[misc]
    finally:
        stream.close()
        writer.join(30)
    assert received == [*recorded, last]


def test_one_database_read_per_batch_however_many_streams(site: Site) -> None:
    site.web.hub.poll_interval = 600.0  # only recorded batches wake the hub here

    def reads_for_batches(streams: list[tuple[str, EventStream]], batches: int) -> int:
        before = len(site.statements.reading("outbox"))
        for _ in range(batches):
            ids = dict(zip(("alice", "bob", "carol"), site.record("alice", "bob", "carol"),
                           strict=True))
            for user, stream in streams:
                assert [e.id for e in stream.events(1)] == [ids[user]]
        return len(site.statements.reading("outbox")) - before

    one = [("alice", open_stream(site, "alice"))]
    try:
        assert reads_for_batches(one, 5) == 5
    finally:
        one[0][1].close()
    wait_for(lambda: site.web.hub.open_streams() == 0, what="the stream to close")
    many = [(user, open_stream(site, user))
            for n in range(30) for user in [("alice", "bob", "carol")[n % 3]]]
    try:
        assert site.web.hub.open_streams() == 30
        assert reads_for_batches(many, 5) == 5
    finally:
        for _, stream in many:
            stream.close()


def test_with_no_stream_open_a_recorded_batch_costs_no_read(site: Site) -> None:
    # The ingest tells the hub of every batch; with nobody listening that must cost nothing.
    before = len(site.statements.reading("outbox"))
    recorded = [site.record("alice", "bob")[-1] for _ in range(5)]
    assert len(site.statements.reading("outbox")) == before
    # The first stream opening "now" reads the mark once, and opens after those rows.
    with open_stream(site, "alice") as stream:
        (first,) = stream.events(1, notifications_only=False)
        assert first.id == recorded[-1]
    assert len(site.statements.reading("outbox")) == before + 1


def test_held_rows_are_not_streamed(site: Site) -> None:
    with open_stream(site, "alice", "&since=0") as stream:
        site.record("alice", state="held")
        (sent,) = site.record("alice")
        assert [e.id for e in stream.events(1)] == [sent]


def test_an_idle_stream_gets_keep_alive_comments(site: Site) -> None:
    site.web.hub.heartbeat = 0.2
    with open_stream(site, "alice") as stream:
        events = stream.events(2, notifications_only=False)
        assert events[0].retry == 2000
        assert events[1].comment == "keep-alive" and events[1].id is None


def test_only_the_streams_of_the_users_concerned_get_a_row(site: Site) -> None:
    with open_stream(site, "alice") as alice, open_stream(site, "bob") as bob:
        (row,) = site.record("bob")
        assert [e.id for e in bob.events(1)] == [row]
        (mine,) = site.record("alice")
        assert [e.id for e in alice.events(1)] == [mine]  # and not bob's before it


def test_a_stream_dropped_before_its_first_event_resumes_where_it_started(site: Site) -> None:
    stream = open_stream(site, "alice")
    (opening,) = stream.events(1, notifications_only=False)
    assert opening.retry == 2000 and opening.id is not None and opening.data is None
    stream.close()
    wait_for(lambda: site.web.hub.open_streams() == 0, what="the stream to close")
    missed = site.record("alice")  # while alice's client is away
    with open_stream(site, "alice", headers={"Last-Event-ID": str(opening.id)}) as again:
        assert [e.id for e in again.events(1)] == missed
