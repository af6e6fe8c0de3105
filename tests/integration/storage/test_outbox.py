"""The outbox on a real database: atomic recording, claims, retries, digests."""

from __future__ import annotations

import pytest

from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration


def test_record_is_unique_per_user_message_destination(store: Store) -> None:
    outbox = Outbox(store)
    new = outbox.record([envelope("m1"), envelope("m1")],
                        [(note("alice", "m1"), "pending"), (note("alice", "m1"), "pending"),
                         (note("alice", "m1", "irc"), "pending"), (note("bob", "m1"), "held")])
    assert new == (1, 3)
    again = outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    assert again == (0, 0)
    assert store.get_message("m1") is not None
    assert outbox.counts() == {("email", "pending"): 1, ("irc", "pending"): 1,
                               ("email", "held"): 1}


def test_claim_is_a_lease(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending"),
                                     (note("bob", "m1"), "pending")])
    first = outbox.claim("email", lease=60)
    assert [r.user for r in first] == ["alice", "bob"]
    assert first[0].notification.content["subject"] == "about m1"
    assert outbox.claim("email") == []  # taken
    clock.now += 61
    assert len(outbox.claim("email")) == 2  # the lease ran out: a crashed worker's rows return
    assert outbox.release_claims() == 2
    assert len(outbox.claim("email", user="bob")) == 1


def test_failures_back_off_then_die(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    states = []
    for _ in range(3):
        clock.now += 10_000
        (row,) = outbox.claim("email")
        states.append(outbox.mark_failed(row, "421 try later", permanent=False,
                                         max_attempts=3, base=5, cap=60))
        assert outbox.claim("email") == []  # not due again at once
    assert states == ["failed", "failed", "dead"]
    (dead,) = outbox.rows(states=["dead"])
    assert dead.attempts == 3 and dead.last_error == "421 try later"
    assert outbox.retry() == 1
    assert len(outbox.claim("email")) == 1


def test_permanent_failure_is_dead_at_once(store: Store) -> None:
    outbox = Outbox(store)
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (row,) = outbox.claim("email")
    assert outbox.mark_failed(row, "550 no such user", permanent=True, max_attempts=8,
                              base=5, cap=60) == "dead"


def test_sent_rows_are_not_claimed_again(store: Store) -> None:
    outbox = Outbox(store)
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (row,) = outbox.claim("email", lease=0.0)
    outbox.mark_sent([row.id])
    assert outbox.claim("email") == []
    assert outbox.rows(states=["sent"])[0].sent_at is not None


def test_digest_commit_never_sends_an_item_twice(store: Store) -> None:
    outbox = Outbox(store)
    outbox.record([envelope("m1"), envelope("m2")],
                  [(note("alice", "m1"), "held"), (note("alice", "m2"), "held")])
    assert outbox.held_groups()[0][:3] == ("alice", "email", 2)
    items = outbox.held("alice", "email", 10)
    digest = note("alice", "digest-1")
    assert outbox.commit_digest(digest, items, window=7) is True
    assert outbox.last_window("alice", "email") == 7
    # The same items again (a second scheduler, say): refused, nothing changes.
    assert outbox.commit_digest(note("alice", "digest-2"), items, window=8) is False
    assert outbox.last_window("alice", "email") == 7
    assert [r.msg_id for r in outbox.rows(states=["pending"])] == ["digest-1"]
    assert len(outbox.rows(states=["digested"])) == 2


def test_secret_is_made_once(store: Store) -> None:
    a = Outbox(store).secret()
    assert len(a) == 32 and Outbox(store).secret() == a


def test_recorded_rows_come_back_as_they_went_in(store: Store) -> None:
    # On PostgreSQL a batch goes in as one array per column: every value must survive it.
    outbox = Outbox(store)
    odd = envelope("m2")
    odd["msg"] = {"big": 2**70, "text": "quote \" backslash \\ brace } comma , \u00e9 \u2603",
                  "null": None, "nested": [{"a": [1, 2.5, "x"]}]}
    notes = [(note("alice", "m2"), "pending"), (note("bob", "m2", "irc"), "dead",
                                                "no [irc] host configured"),
             (note("carol", "m2"), "sent"), (note("dave", "m2"), "held")]
    new_messages, new_notifications, claimed = outbox.record_and_claim(
        [odd], notes, {"email": 1}, lease=30)
    assert (new_messages, new_notifications) == (1, 4)
    assert [(r.user, r.destination, r.state) for r in claimed] == [("alice", "email", "pending")]
    assert store.get_message("m2")["msg"] == odd["msg"]
    rows = {r.user: r for r in outbox.rows(states=("pending", "dead", "sent", "held"))}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert rows["alice"].claimed_until == claimed[0].claimed_until
    assert rows["bob"].state == "dead" and rows["bob"].last_error == "no [irc] host configured"
    assert rows["carol"].sent_at is not None and rows["dave"].claimed_until is None
    for user, row in rows.items():
        expected = next(n for n, *_ in notes if n.user == user)
        assert row.notification == expected
        assert row.id == claimed[0].id or user != "alice"
