"""The inbox on a real database: written with the outbox, paged, marked, counted, pruned."""

from __future__ import annotations

import pytest

from notifier.errors import InputError
from notifier.storage import Store
from notifier.storage.inbox import MAX_LIMIT, Counts, Inbox, decode_cursor, inbox_row
from notifier.storage.outbox import Outbox
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration


def row(user: str, msg_id: str, **over: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "title": f"about {msg_id}", "link": f"https://example.org/{msg_id}", "app": "bodhi",
        "topic": "org.fedoraproject.prod.bodhi.update.comment", "severity": "info",
        "timestamp": 1_800_000_000.0, "rules": ["mine"],
        "why": {"mine": "package 'kernel' is owned by " + user}}
    fields.update(over)
    return inbox_row(user, msg_id, **fields)  # type: ignore[arg-type]


def record(outbox: Outbox, *msg_ids: str, users: tuple[str, ...] = ("alice",)) -> None:
    outbox.record_and_claim([envelope(m) for m in msg_ids],
                            [(note(u, m, d), "pending") for m in msg_ids for u in users
                             for d in ("email", "irc")],
                            inbox=[row(u, m) for m in msg_ids for u in users])


def test_rows_are_written_with_the_message_once_whatever_the_destinations(store: Store) -> None:
    outbox, inbox = Outbox(store), Inbox(store)
    record(outbox, "m1", users=("alice", "bob"))
    record(outbox, "m1", "m2", users=("alice", "bob"))  # m1 again: only m2 is new
    page = inbox.page("alice")
    assert [i.msg_id for i in page.items] == ["m2", "m1"]
    first = page.items[1]
    assert (first.title, first.link, first.app, first.rules, first.read) == (
        "about m1", "https://example.org/m1", "bodhi", ("mine",), False)
    assert first.why == {"mine": "package 'kernel' is owned by alice"}
    assert inbox.counts("bob") == Counts(2, 2)
    assert inbox.counts("carol") == Counts(0, 0)
    assert outbox.counts() == {("email", "pending"): 4, ("irc", "pending"): 4}


def test_a_batch_the_database_refuses_writes_no_inbox_row(store: Store) -> None:
    outbox, inbox = Outbox(store), Inbox(store)
    bad = row("alice", "m1", title=None)  # NOT NULL: the whole transaction goes
    with pytest.raises(Exception, match="inbox"):
        outbox.record_and_claim([envelope("m1")], [(note("alice", "m1"), "pending")],
                                inbox=[bad])
    assert store.get_message("m1") is None and outbox.counts() == {}
    assert inbox.counts("alice") == Counts(0, 0)


def test_pages_go_newest_first_by_cursor(store: Store) -> None:
    outbox, inbox = Outbox(store), Inbox(store)
    record(outbox, *[f"m{i:02d}" for i in range(7)], users=("alice", "bob"))
    seen, cursor = [], None
    while True:
        page = inbox.page("alice", cursor, limit=3)
        seen.append([i.msg_id for i in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [["m06", "m05", "m04"], ["m03", "m02", "m01"], ["m00"]]
    assert all(i.user == "alice" for i in inbox.page("alice", limit=MAX_LIMIT).items)
    with pytest.raises(InputError, match="limit"):
        inbox.page("alice", limit=MAX_LIMIT + 1)
    with pytest.raises(InputError, match="cursor"):
        inbox.page("alice", "not-a-cursor")
    with pytest.raises(InputError, match="cursor"):
        decode_cursor("aW5ib3g6LTE")  # "inbox:-1"


def test_read_unread_and_the_unread_filter(store: Store) -> None:
    outbox, inbox = Outbox(store), Inbox(store)
    record(outbox, "m1", "m2", "m3", users=("alice", "bob"))
    ids = {i.msg_id: i.id for i in inbox.page("alice").items}
    bobs = inbox.page("bob").items[0].id
    assert inbox.mark("alice", [ids["m1"], ids["m3"]]) == []
    assert inbox.counts("alice") == Counts(3, 1)
    assert [i.msg_id for i in inbox.page("alice", unread=True).items] == ["m2"]
    # Another user's row: nothing changes, and the stranger is named.
    assert inbox.mark("alice", [ids["m2"], bobs]) == [bobs]
    assert inbox.counts("alice") == Counts(3, 1) and inbox.counts("bob") == Counts(3, 3)
    assert inbox.mark("alice", [ids["m3"]], read=False) == []
    assert [i.msg_id for i in inbox.page("alice", unread=True).items] == ["m3", "m2"]
    assert inbox.get("alice", ids["m1"]).read is True  # type: ignore[union-attr]
    assert inbox.get("bob", ids["m1"]) is None


def test_read_all_stops_at_the_row_given(store: Store) -> None:
    outbox, inbox = Outbox(store), Inbox(store)
    record(outbox, "m1", "m2")
    seen = inbox.last_id("alice")
    record(outbox, "m3")  # arrives while the user looks
    assert inbox.mark_all_read("alice", seen) == 2
    assert [i.msg_id for i in inbox.page("alice", unread=True).items] == ["m3"]
    assert inbox.counts("alice") == Counts(3, 1)


def test_prune_drops_rows_older_than_the_retention(store: Store) -> None:
    clock = Clock()
    inbox = Inbox(store, clock)
    for day in range(10):
        Outbox(store, clock).record_and_claim([envelope(f"m{day}")], [],
                                              inbox=[row("alice", f"m{day}")])
        clock.now += 86400
    # Now is day 10: rows of days 0 to 6 are more than three days old.
    assert inbox.prune(3 * 86400 + 1) == 7
    assert [i.msg_id for i in inbox.page("alice").items] == ["m9", "m8", "m7"]
    assert inbox.prune(3 * 86400 + 1) == 0
    assert inbox.prune(0) == 3
    assert inbox.prune(0) == 0
