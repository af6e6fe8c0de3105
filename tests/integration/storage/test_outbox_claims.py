"""Recording notifications already claimed, giving claims back, and when a claimed row is due."""

from __future__ import annotations

import pytest

from notifier.storage import Store
from notifier.storage.outbox import LEASE, Outbox, OutboxRow
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration


def test_rows_of_claimed_destinations_come_back_leased(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    new_messages, new_notes, claimed = outbox.record_and_claim(
        [envelope("m1")],
        [(note("alice", "m1"), "pending"), (note("alice", "m1", "irc"), "pending"),
         (note("bob", "m1"), "pending")],
        claim={"email"}, lease=30)
    assert (new_messages, new_notes) == (1, 3)
    assert [(r.user, r.destination) for r in claimed] == [("alice", "email"), ("bob", "email")]
    for r in claimed:
        assert r.state == "pending" and r.attempts == 0
        assert r.claimed_until == clock.now + 30
        assert r.next_attempt == r.created_at == clock.now
        assert r.notification.content["subject"] == "about m1"
        assert r.notification.user == r.user
    # The ids are those of the database rows.
    by_key = {(r.user, r.destination): r.id for r in outbox.rows()}
    assert [r.id for r in claimed] == [by_key["alice", "email"], by_key["bob", "email"]]
    assert [r.id for r in claimed] == sorted(r.id for r in claimed)
    # Leased: claim() does not hand them out again.
    assert outbox.claim("email") == []
    clock.now += 29
    assert outbox.claim("email") == []
    # Rows of other destinations are pending and unclaimed.
    (irc,) = outbox.claim("irc")
    assert irc.user == "alice" and irc.claimed_until == clock.now + LEASE
    # After the lease, anyone takes them (the process that held them died, say).
    clock.now += 2
    assert [r.user for r in outbox.claim("email")] == ["alice", "bob"]


def test_default_lease_and_no_claim_by_default(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    _m, _n, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "pending")], claim=["email"])
    assert [r.claimed_until for r in claimed] == [clock.now + LEASE]
    # Without ``claim`` nothing is claimed, and record() is the same thing.
    assert outbox.record_and_claim([envelope("m2")], [(note("alice", "m2"), "pending")]
                                   ) == (1, 1, [])
    assert outbox.record([envelope("m3")], [(note("alice", "m3"), "pending")]) == (1, 1)
    assert sorted(r.msg_id for r in outbox.claim("email")) == ["m2", "m3"]


def test_only_pending_rows_are_claimed(store: Store) -> None:
    outbox = Outbox(store, Clock())
    _m, new, claimed = outbox.record_and_claim(
        [envelope("m1")],
        [(note("alice", "m1"), "held"), (note("bob", "m1"), "sent"),
         (note("carol", "m1"), "pending")], claim={"email"})
    assert new == 3
    assert [r.user for r in claimed] == ["carol"]
    # The held row waits for its digest, unclaimed.
    assert outbox.held_groups()[0][:3] == ("alice", "email", 1)
    assert outbox.release(outbox.rows(states=["held", "sent"])) == 0


def test_a_notification_recorded_twice_is_claimed_once(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    # Twice in one batch.
    _m, new, claimed = outbox.record_and_claim(
        [envelope("m1"), envelope("m1")],
        [(note("alice", "m1"), "pending"), (note("alice", "m1"), "pending"),
         (note("bob", "m1"), "pending")], claim={"email"})
    assert new == 2
    assert [r.user for r in claimed] == ["alice", "bob"]
    # Again in a later batch (the bus delivered the message twice): nothing new to claim.
    assert outbox.record_and_claim([envelope("m1")], [(note("alice", "m1"), "pending")],
                                   claim={"email"}) == (0, 0, [])
    # Released, the first claim's rows come back once each.
    assert outbox.release(claimed) == 2
    assert [r.user for r in outbox.claim("email")] == ["alice", "bob"]
    assert len(outbox.rows()) == 2


def test_recording_again_does_not_renew_or_take_a_claim(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    (row,) = outbox.record_and_claim([envelope("m1")], [(note("alice", "m1"), "pending")],
                                     claim={"email"}, lease=10)[2]
    clock.now += 5
    assert outbox.record_and_claim([envelope("m1")], [(note("alice", "m1"), "pending")],
                                   claim={"email"}, lease=100)[2] == []
    clock.now += 6  # past the first lease: the re-recording did not extend it
    (again,) = outbox.claim("email")
    assert again.id == row.id


def test_duplicate_in_one_batch_is_claimed_only_if_the_stored_row_is(store: Store) -> None:
    outbox = Outbox(store, Clock())
    _m, new, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "held"), (note("alice", "m1"), "pending")],
        claim={"email"})
    assert new == 1
    (stored,) = outbox.rows()
    assert stored.state == "held" and stored.claimed_until is None
    assert claimed == []


def test_release_makes_claimed_rows_due_at_once(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    _m, _n, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note(u, "m1"), "pending") for u in ("alice", "bob", "carol")],
        claim={"email"})
    assert outbox.claim("email") == []
    alice, bob, carol = claimed
    assert outbox.release([alice, carol]) == 2
    assert outbox.next_due("email") == clock.now
    assert [r.user for r in outbox.claim("email")] == ["alice", "carol"]
    assert outbox.claim("email") == []  # bob is still leased
    assert outbox.release([]) == 0


def test_release_leaves_finished_rows_alone(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    _m, _n, claimed = outbox.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "pending"), (note("bob", "m1"), "pending")],
        claim={"email"})
    alice, bob = claimed
    outbox.mark_sent([alice.id])
    outbox.mark_failed(bob, "550 no such user", permanent=True, max_attempts=8, base=5,
                       cap=60)
    assert outbox.release([alice, bob]) == 0
    assert {r.user: r.state for r in outbox.rows()} == {"alice": "sent", "bob": "dead"}
    assert outbox.claim("email") == []


def claimed_then_failed(outbox: Outbox) -> tuple[OutboxRow, OutboxRow]:
    """One row for alice, claimed, then failed with a 100 s back-off: (claimed, stored)."""
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (row,) = outbox.claim("email")
    outbox.mark_failed(row, "421 later", permanent=False, max_attempts=8, base=100, cap=100)
    (failed,) = outbox.rows(states=["failed"])
    return row, failed


def test_release_of_a_failed_row_keeps_its_backoff(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    row, failed = claimed_then_failed(outbox)
    assert failed.next_attempt > clock.now
    # Recording the failure ended the claim already: releasing it changes nothing, and the
    # row is due again when its back-off ends, not before.
    assert outbox.release([row]) == 0
    assert outbox.claim("email") == []
    clock.now = failed.next_attempt
    assert [r.id for r in outbox.claim("email")] == [row.id]


def test_claim_reports_when_its_lease_runs_out(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (row,) = outbox.claim("email", lease=45)
    assert row.claimed_until == clock.now + 45
    (stored,) = outbox.rows()
    assert stored.claimed_until == clock.now + 45


def test_next_due_counts_a_claimed_row_from_its_claims_end(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    start = clock.now
    outbox.record_and_claim([envelope("m1")], [(note("alice", "m1"), "pending")],
                            claim={"email"}, lease=30)
    assert outbox.next_due("email") == start + 30  # not now: nobody can claim it before
    clock.now += 10
    assert outbox.next_due("email") == start + 30
    # An unclaimed pending row of the destination is due at once.
    outbox.record([envelope("m2")], [(note("bob", "m2"), "pending")])
    assert outbox.next_due("email") == clock.now
    assert outbox.next_due("email", user="alice") == start + 30
    assert outbox.next_due("email", user="bob") == clock.now
    assert outbox.next_due("email", user="carol") is None
    assert outbox.next_due("irc") is None


def test_next_due_takes_the_later_of_backoff_and_claim(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    row, failed = claimed_then_failed(outbox)
    # Failed, not claimed: due when the back-off ends.
    assert outbox.next_due("email") == failed.next_attempt
    # Claimed once due: then due again when that claim runs out, not at the back-off.
    clock.now = failed.next_attempt
    (again,) = outbox.claim("email", lease=500)
    assert outbox.next_due("email") == again.claimed_until == clock.now + 500
    outbox.release([again])
    assert outbox.next_due("email") == failed.next_attempt


def test_a_row_is_claimable_at_the_time_next_due_reports(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    outbox.record_and_claim([envelope("m1")], [(note("alice", "m1"), "pending")],
                            claim={"email"}, lease=30)
    due = outbox.next_due("email")
    assert due is not None
    clock.now = due
    assert len(outbox.claim("email")) == 1


def test_release_gives_back_only_claims_that_are_still_ours(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock)
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (mine,) = outbox.claim("email", lease=60)
    clock.now += 61  # my claim ran out; another worker takes the row
    (theirs,) = outbox.claim("email", lease=60)
    assert outbox.release([mine]) == 0  # a stale claim gives back nothing
    assert outbox.claim("email") == []  # the other worker's claim holds
    assert outbox.release([theirs]) == 1
    assert [r.user for r in outbox.claim("email")] == ["alice"]


def test_a_mapping_caps_the_rows_claimed_per_destination(store: Store) -> None:
    outbox = Outbox(store, Clock())
    users = ("alice", "bob", "carol", "dave")
    _m, new, claimed = outbox.record_and_claim(
        [envelope("m1")],
        [(note(u, "m1"), "pending") for u in users]
        + [(note(u, "m1", "irc"), "pending") for u in users],
        claim={"email": 3, "irc": 0})
    assert new == 8
    assert [(r.user, r.destination) for r in claimed] == [
        ("alice", "email"), ("bob", "email"), ("carol", "email")]
    # The rest are pending and unclaimed: any worker takes them from the database.
    assert [r.user for r in outbox.claim("email")] == ["dave"]
    assert [r.user for r in outbox.claim("irc")] == list(users)
