"""Which browsers took a notification (for its retry), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from notifier.storage import Store
from notifier.storage.push import DELIVERIES_KEPT, PushSubscriptions
from tests.integration.outbox_rows import Clock
from tests.integration.pushservice import PushService

pytestmark = pytest.mark.integration


def test_taken_noted_read_forgotten_and_removed_with_the_browser(store: Store) -> None:
    clock = Clock()
    subs = PushSubscriptions(store, clock=clock)
    service = PushService()  # never started: the form of its subscriptions is enough

    def add(user: str) -> int:
        browser = service.browser(user)
        keys = browser.keys()
        return subs.add(user, service.endpoint(browser), keys["p256dh"], keys["auth"],
                        allow_private=True).id

    a1, a2, a3, b1 = add("alice"), add("alice"), add("alice"), add("bob")
    subs.note_taken([a1, a2], "m1")
    subs.note_taken([a1, a2], "m1")  # again: no error, no second note
    subs.note_taken([b1], "m1")
    subs.note_taken([a3], "m2")
    listed, taken = subs.pending("alice", "m1")
    assert [s.id for s in listed] == [a1, a2, a3] and taken == {a1, a2}
    assert subs.pending("bob", "m1")[1] == {b1}  # another user's notes are their own
    subs.forget_taken([a1, a2, a3], "m1")
    assert subs.pending("alice", "m1")[1] == set()
    assert subs.pending("bob", "m1")[1] == {b1}
    assert subs.pending("alice", "m2")[1] == {a3}
    assert subs.remove("alice", a3)
    assert subs.pending("alice", "m2")[1] == set()
    assert subs.remove_gone(b1)
    assert subs.pending("bob", "m1") == ([], set())
    # Notes older than DELIVERIES_KEPT are dropped when new ones are written.
    subs.note_taken([a1], "old")
    clock.now += DELIVERIES_KEPT + 1
    subs.note_taken([a2], "new")
    assert subs.pending("alice", "old")[1] == set()
    assert subs.pending("alice", "new")[1] == {a2}
