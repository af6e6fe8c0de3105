"""Starting from the stored snapshot: used when current, brought up to date through the change
log, and never trusted when stale, corrupt or of another version (then every rule is loaded)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from benchmarks.match import World
from notifier.errors import RuleError
from notifier.rules import Matcher
from notifier.rules.loading import ENV
from notifier.service.changes import ChangeWatcher
from notifier.storage import Store, rulesnapshot
from notifier.storage.schema import changes, rule_snapshots

DESTS = ["desktop", "email", "irc", "rss"]
NOT_USED = "rules snapshot not used"


@pytest.fixture
def world() -> World:
    return World(7, 300)


@pytest.fixture
def store(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ENV, raising=False)
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as s:
        s.upsert_rules([rule for user in world.users for rule in world.rules_of(user)])
        packages: dict[str, dict[str, list[str]]] = {}
        for package, kind, name in world.ownership:
            packages.setdefault(package, {"users": [], "groups": []})[f"{kind}s"].append(name)
        s.apply_ownership(packages)
        yield s


def load(store: Store, **kw) -> Matcher:
    return Matcher.from_store(store, destinations=DESTS, **kw)


def contents(m: Matcher):
    rules, users, groups = m.export()
    return (sorted((r.user, r.name, repr(r.to_dict())) for r in rules),
            {p: sorted(o) for p, o in users.items()}, {p: sorted(o) for p, o in groups.items()})


def from_snapshot(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether the last load logged that it used the snapshot (then forget the log)."""
    text = caplog.text
    caplog.clear()
    return "from the snapshot" in text


def same_answers(a: Matcher, b: Matcher, world: World) -> None:
    for record in world.messages(300):
        assert a.match(record, explain=True) == b.match(record, explain=True)


def test_a_full_load_writes_the_snapshot_and_the_next_start_uses_it(store, world, caplog):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    full = load(store)
    assert not from_snapshot(caplog)
    stored = rulesnapshot.read(store)
    assert stored is not None and stored.rules == len(full.index) > 1000
    again = load(store)
    assert from_snapshot(caplog)
    assert contents(again) == contents(full)
    same_answers(again, full, world)
    assert again.position == full.position == store.last_change()


def test_changes_after_the_snapshot_are_applied_at_load(store, world, caplog):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    load(store)
    victim = store.list_rules()[5]
    store.remove_rule(victim["user"], victim["name"])
    store.upsert_rules([{"user": "zed", "name": "Mine", "track": {"kind": "artifacts-owned"},
                         "destinations": ["email"]}])
    first = store.list_rules()[0]
    store.set_rule_disabled(first["user"], first["name"], True)
    store.apply_ownership({"brand-new": {"users": ["zed"], "groups": ["zed-sig"]}})
    caplog.clear()
    loaded = load(store)
    # A rule removed, one added, one disabled, a user and a group owning a package.
    assert "then 5 later change(s)" in caplog.text
    assert from_snapshot(caplog)
    full = load(store, snapshot=False)
    assert contents(loaded) == contents(full)
    assert loaded.index.get(victim["user"], victim["name"]) is None
    assert [r.user for r in loaded.match({"topic": "t", "packages": ["brand-new"],
                                          "usernames": [], "agent": None})] == ["zed"]
    assert loaded.position == store.last_change()
    same_answers(loaded, full, world)


def test_a_stale_snapshot_is_not_used(store, caplog):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    full = load(store)
    with store.engine.begin() as conn:  # the change it was made at is pruned
        conn.execute(delete(changes))
    store.upsert_rules([{"user": "zed", "name": "Mine", "track": {"kind": "artifacts-owned"},
                         "destinations": ["email"]}])
    caplog.clear()
    loaded = load(store)
    assert not from_snapshot(caplog)
    assert loaded.index.get("zed", "Mine") is not None
    assert len(loaded.index) == len(full.index) + 1


def test_a_change_log_that_started_again_is_not_taken_for_the_same(store, caplog):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    load(store)
    stored = rulesnapshot.read(store)
    assert stored is not None and stored.change_seq > 0
    with store.engine.begin() as conn:  # same number, another entry
        conn.execute(update(changes).where(changes.c.seq == stored.change_seq)
                     .values(key1="someone else"))
    load(store)
    assert NOT_USED in caplog.text and "not the same entry" in caplog.text


@pytest.mark.parametrize("damage", [
    {"data": b"\x00" * 100},                       # corrupt bytes: the checksum differs
    {"format": 999},                                # another version's snapshot
    {"destinations": "email"},                      # made when other backends were there
    {"digest": "0" * 64},                           # checksum that does not match
])
def test_a_corrupt_or_foreign_snapshot_falls_back_to_a_full_load_logged(store, world, caplog,
                                                                       damage):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    full = load(store)
    with store.engine.begin() as conn:
        conn.execute(update(rule_snapshots).values(**damage))
    caplog.clear()
    loaded = load(store)
    assert NOT_USED in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert contents(loaded) == contents(full)
    # ... and the full load wrote a good one again.
    caplog.clear()
    load(store)
    assert from_snapshot(caplog)


def test_turned_off_it_is_neither_read_nor_written(store, monkeypatch):
    monkeypatch.setenv(ENV, "off")
    load(store)
    assert rulesnapshot.read(store) is None


def test_an_owner_filter_reads_the_tables(store, caplog):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    load(store)
    caplog.clear()
    m = load(store, owner_filter=lambda package, kind, name: kind == "group")
    assert "from the snapshot" not in caplog.text
    assert not m.index.user_owners


def test_a_stored_rule_that_turned_invalid_after_the_snapshot_is_reported(store, caplog):
    load(store)
    # Written past validation (by hand, say): a destination nothing delivers.
    store.upsert_rules([{"user": "zed", "name": "Pager", "track": {"kind": "related-events"},
                         "destinations": ["pager"]}])
    with pytest.raises(RuleError, match="'Pager'"):
        load(store)
    skipped: list[str] = []
    m = load(store, on_invalid=skipped.append)
    assert len(skipped) == 1 and m.index.get("zed", "Pager") is None


def test_the_service_refreshes_the_snapshot_before_pruning_and_keeps_its_change(store, caplog):
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    matcher = Matcher.from_store(store)  # the installed backends, as the service has them

    class Users:
        def forget(self, name=None):
            pass

    watcher = ChangeWatcher(store, matcher, Users())
    first = rulesnapshot.read(store)
    assert first is not None and watcher.seen == first.change_seq
    store.upsert_rules([{"user": "zed", "name": "Mine", "track": {"kind": "artifacts-owned"},
                         "destinations": ["email"]}])
    assert watcher.poll() == 1
    store._clock = lambda: 1e12  # everything applied is now more than a day old
    watcher.prune()
    refreshed = rulesnapshot.read(store)
    assert refreshed is not None and refreshed.change_seq == watcher.seen > first.change_seq
    assert store.changes_after(refreshed.change_seq - 1)  # its change is kept
    caplog.clear()
    loaded = Matcher.from_store(store)
    assert "from the snapshot" in caplog.text
    assert loaded.index.get("zed", "Mine") is not None
    assert contents(loaded) == contents(matcher)
