"""Muting and snoozing rules on a real database: by id, per user, through the change log."""

from __future__ import annotations

import pytest

from notifier.rules import parse_rule
from notifier.storage import Store
from notifier.storage.mutes import Mutes
from tests.integration.outbox_rows import Clock

pytestmark = pytest.mark.integration


def stored(store: Store) -> dict[str, int]:
    store.upsert_rules([{"user": u, "name": "mine", "disabled": False,
                         "track": {"kind": "artifacts-owned"}, "destinations": ["email"]}
                        for u in ("alice", "bob")])
    return {r.user: r.id for r in Mutes(store).list()}


def test_mute_snooze_and_unmute_are_logged_changes(store: Store) -> None:
    ids = stored(store)
    clock = Clock()
    mutes = Mutes(store, clock)
    seq = store.last_change()
    muted = mutes.mute(ids["alice"], user="alice")
    assert muted is not None and muted.disabled and muted.snoozed_until is None
    assert store.get_rule("alice", "mine")["disabled"] is True  # type: ignore[index]
    snoozed = mutes.snooze(ids["alice"], 8 * 3600, user="alice")
    assert snoozed is not None and not snoozed.disabled
    assert snoozed.snoozed_until == clock.now + 8 * 3600
    document = store.get_rule("alice", "mine")
    assert document is not None and document["snoozed_until"] == clock.now + 8 * 3600
    rule = parse_rule(document, destinations=["email"], ignore_unknown=True)
    assert rule.snoozed(clock.now) and not rule.snoozed(clock.now + 8 * 3600)
    assert snoozed.to_dict(clock.now)["snoozed_until"] == clock.now + 8 * 3600
    assert snoozed.to_dict(clock.now + 9 * 3600)["snoozed_until"] is None
    unmuted = mutes.unmute(ids["alice"], user="alice")
    assert unmuted is not None and not unmuted.disabled and unmuted.snoozed_until is None
    assert "snoozed_until" not in (store.get_rule("alice", "mine") or {})
    log = store.changes_after(seq)
    assert [(c.kind, c.op, c.key1, c.key2) for c in log] == [("rule", "upsert", "alice",
                                                               "mine")] * 3


def test_another_users_rule_is_as_good_as_none(store: Store) -> None:
    ids = stored(store)
    mutes = Mutes(store)
    seq = store.last_change()
    assert mutes.mute(ids["bob"], user="alice") is None
    assert mutes.get(ids["bob"], user="alice") is None
    assert mutes.mute(10_000) is None
    assert store.changes_after(seq) == []
    assert mutes.get(ids["bob"]).disabled is False  # type: ignore[union-attr]
    # Without a user (an admin), any rule.
    assert mutes.mute(ids["bob"]).user == "bob"  # type: ignore[union-attr]
    assert [r.disabled for r in mutes.list()] == [False, True]
    assert [r.name for r in mutes.list("bob")] == ["mine"]


def test_unsubscribe_mutes_by_name(store: Store) -> None:
    stored(store)
    mutes = Mutes(store)
    assert mutes.mute_named("alice", "mine").disabled  # type: ignore[union-attr]
    assert mutes.mute_named("alice", "gone") is None
