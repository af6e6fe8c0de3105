"""Claims tied to a worker's heartbeat: held while it beats, taken over once it stops."""

from __future__ import annotations

import threading

import pytest

from notifier.storage import Store
from notifier.storage.outbox import LEASE, Outbox
from notifier.storage.workers import (
    BEAT,
    DEAD_AFTER,
    SEND_MARGIN,
    FixedClaimant,
    Registry,
    WorkerOf,
)
from tests.integration.outbox_rows import Clock, envelope, note

pytestmark = pytest.mark.integration


def two_workers(store: Store) -> tuple[Clock, Registry, Outbox, Registry, Outbox]:
    clock = Clock()
    a, b = Registry(store, "all", clock=clock), Registry(store, "deliver", clock=clock)
    a.register()
    b.register()
    return clock, a, Outbox(store, clock, claimant=a), b, Outbox(store, clock, claimant=b)


def test_registered_workers_and_their_heartbeats(store: Store) -> None:
    clock, a, _, b, _ = two_workers(store)
    assert a.id != b.id
    assert {(w.id, w.role) for w in a.live()} == {(a.id, "all"), (b.id, "deliver")}
    clock.now += DEAD_AFTER - 1
    a.beat()
    clock.now += 1.5
    # b stopped beating: it is no longer live, a is.
    assert [w.id for w in a.live()] == [a.id]
    assert {w.id for w in a.all()} == {a.id, b.id}
    b.unregister()
    assert [w.id for w in a.all()] == [a.id]


def test_a_claim_holds_while_its_worker_beats_and_is_taken_once_it_stops(store: Store) -> None:
    clock, a, out_a, b, out_b = two_workers(store)
    out_a.record([envelope(f"m{i}") for i in range(3)],
                 [(note("alice", f"m{i}"), "pending") for i in range(3)])
    claimed = out_a.claim("email", limit=2)
    assert [r.claimed_by for r in claimed] == [a.id, a.id]
    assert all(out_a.holds(r) for r in claimed)
    # The other worker gets only the row a did not take.
    assert [r.msg_id for r in out_b.claim("email")] == ["m2"]
    # a beats: its claims hold for as long as it does, well past DEAD_AFTER.
    for _ in range(5):
        clock.now += BEAT
        a.beat()
        b.beat()
        assert out_b.claim("email") == []
    # a stops beating (killed): b takes its rows once the heartbeat is DEAD_AFTER old,
    # long before their lease would have run out.
    clock.now += DEAD_AFTER - 0.5
    b.beat()
    assert out_b.claim("email") == []
    assert out_b.next_due("email") == pytest.approx(claimed[0].claimed_until)
    clock.now += 1
    b.beat()
    assert out_b.next_due("email") == claimed[0].next_attempt  # due now: its worker died
    taken = out_b.claim("email")
    assert [r.msg_id for r in taken] == ["m0", "m1"]
    assert [r.claimed_by for r in taken] == [b.id, b.id]
    # a, not beating for that long, no longer sends what it held.
    assert not any(out_a.holds(r) for r in claimed)


def test_a_worker_stops_sending_before_its_claims_can_be_taken(store: Store) -> None:
    clock, a, out_a, _, _ = two_workers(store)
    out_a.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (row,) = out_a.claim("email")
    clock.now += DEAD_AFTER - SEND_MARGIN - 0.1
    assert out_a.holds(row)
    clock.now += 0.2
    assert not out_a.holds(row)  # its heartbeat could be stale for the others soon
    # The next beat after a stale heartbeat registers under a new id: the old claims stay
    # void for everyone, this worker too.
    clock.now += SEND_MARGIN
    old = a.id
    a.beat()
    assert a.id != old
    assert not out_a.holds(row)
    (again,) = out_a.claim("email")
    assert again.claimed_by == a.id and out_a.holds(again)
    assert [w.id for w in a.all() if w.id == old] == [old]  # kept, for people to read


def test_rows_recorded_claimed_name_their_worker(store: Store) -> None:
    clock, a, out_a, _, out_b = two_workers(store)
    _, _, claimed = out_a.record_and_claim(
        [envelope("m1")], [(note("alice", "m1"), "pending"), (note("bob", "m1"), "pending")],
        claim={"email"})
    assert [r.claimed_by for r in claimed] == [a.id, a.id]
    assert out_b.claim("email") == []
    a.unregister()  # stopping: whatever it still claimed is due at once
    assert [r.user for r in out_b.claim("email")] == ["alice", "bob"]


def test_released_at_start_only_the_claims_of_dead_workers(store: Store) -> None:
    clock, a, out_a, b, out_b = two_workers(store)
    out_a.record([envelope(f"m{i}") for i in range(4)],
                 [(note("alice", f"m{i}"), "pending") for i in range(4)])
    out_a.claim("email", limit=2)
    out_b.claim("email", limit=1)
    for _ in range(7):  # a died; b lives
        clock.now += BEAT
        b.beat()
    c = Registry(store, "all", clock=clock)
    c.register()
    out_c = Outbox(store, clock, claimant=c)
    assert out_c.release_claims(dead_only=True) == 2
    states = {r.msg_id: r.claimed_by for r in out_c.rows()}
    assert states == {"m0": None, "m1": None, "m2": b.id, "m3": None}
    # Without dead_only (SQLite: one service owns every row), every claim goes.
    assert out_c.release_claims() == 1


def test_a_lease_alone_still_counts_and_a_fixed_claimant_holds_its_own(store: Store) -> None:
    clock = Clock()
    plain = Outbox(store, clock)
    plain.record([envelope("m1")], [(note("alice", "m1"), "pending")])
    (row,) = plain.claim("email")
    assert row.claimed_by is None and plain.holds(row)
    registry = Registry(store, clock=clock)
    registry.register()
    other = Outbox(store, clock, claimant=registry)
    assert other.claim("email") == []  # a lease without a worker runs its course
    clock.now += LEASE
    (taken,) = other.claim("email")
    child = Outbox(store, clock, claimant=FixedClaimant(registry.id))
    assert child.holds(taken)
    assert not child.holds(row.__class__(**{**row.__dict__, "claimed_by": "someone"}))


def test_two_workers_claiming_at_once_never_take_the_same_row(store: Store) -> None:
    """On PostgreSQL with SKIP LOCKED, on SQLite with its single writer."""
    _, a, out_a, b, out_b = two_workers(store)
    out_a.record([envelope(f"m{i}") for i in range(300)],
                 [(note("alice", f"m{i}"), "pending") for i in range(300)])
    got: dict[str, list[int]] = {a.id: [], b.id: []}

    def drain(outbox: Outbox, who: str) -> None:
        while rows := outbox.claim("email", limit=7):
            got[who] += [r.id for r in rows]
            outbox.mark_sent([r.id for r in rows])

    threads = [threading.Thread(target=drain, args=(o, r.id)) for o, r in
               ((out_a, a), (out_b, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(got[a.id]) & set(got[b.id])
    assert len(got[a.id]) + len(got[b.id]) == 300


def test_a_digest_decided_on_a_stale_window_is_not_queued_twice(store: Store) -> None:
    """Two workers decide the same digest; the second to commit queues nothing, even for
    items the first did not see."""
    clock, _, out_a, _, out_b = two_workers(store)
    out_a.record([envelope("m1"), envelope("m2")],
                 [(note("alice", "m1"), "held"), (note("alice", "m2"), "held")])
    seen_a = out_a.last_window("alice", "email")
    seen_b = out_b.last_window("alice", "email")
    items_a = out_a.held("alice", "email", 100)
    assert out_a.commit_digest(note("alice", "digest-a"), items_a, 7, seen_window=seen_a)
    # b read the window before a's digest, and finds a new item held after it.
    out_a.record([envelope("m3")], [(note("alice", "m3"), "held")])
    items_b = out_b.held("alice", "email", 100)
    assert [i.msg_id for i in items_b] == ["m3"]
    assert not out_b.commit_digest(note("alice", "digest-b"), items_b, 7, seen_window=seen_b)
    assert [r.msg_id for r in out_b.rows(states=["pending"])] == ["digest-a"]
    assert [r.msg_id for r in out_b.rows(states=["held"])] == ["m3"]
    # Decided on the window as it stands now, it goes.
    assert out_b.commit_digest(note("alice", "digest-b"), items_b, 8,
                               seen_window=out_b.last_window("alice", "email"))


def test_a_process_working_for_a_worker_follows_its_heartbeat_and_its_new_id(
        store: Store) -> None:
    clock, a, out_a, _, out_b = two_workers(store)
    sender = Outbox(store, clock, claimant=WorkerOf(store, a.id, clock=clock))
    sender.record([envelope("m1"), envelope("m2")],
                  [(note("alice", "m1"), "pending"), (note("alice", "m2"), "pending")])
    (row,) = sender.claim("email", limit=1)
    assert row.claimed_by == a.id and sender.holds(row) and out_a.holds(row)
    assert out_b.claim("email", limit=1)[0].msg_id == "m2"  # not m1: a's
    # a's heartbeat stops: the sender process stops sending what it claimed, as a does.
    clock.now += DEAD_AFTER - SEND_MARGIN + 0.1
    assert not sender.holds(row)
    # a registers again under a new id: the sender process claims in that name.
    clock.now += SEND_MARGIN
    a.beat()
    (again,) = sender.claim("email", limit=1)
    assert again.msg_id == "m1" and again.claimed_by == a.id and sender.holds(again)
    # a unregisters (stopping): its claims are void, the sender process's too.
    a.unregister()
    clock.now += 1
    assert not sender.holds(again)


def test_two_workers_recording_the_same_message_at_once_store_each_notification_once(
        store: Store) -> None:
    """A message redelivered to a second worker while the first records it (killed before
    its ack): the outbox's key keeps one row of each notification."""
    _, a, out_a, b, out_b = two_workers(store)
    batch = [envelope(f"m{i}") for i in range(200)]
    notes = [(note(user, f"m{i}"), "pending") for i in range(200) for user in ("alice", "bob")]
    results: list[tuple[int, int]] = []
    start = threading.Barrier(2)

    def record(outbox: Outbox) -> None:
        start.wait()
        results.append(outbox.record(batch, notes))

    threads = [threading.Thread(target=record, args=(o,)) for o in (out_a, out_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(new for new, _ in results) == 200
    assert sum(n for _, n in results) == 400
    assert len(out_a.rows()) == 400
