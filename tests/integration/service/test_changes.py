"""The change watcher against a real store: a change that fails to apply is tried again,
and the matcher never silently differs from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import notifier.service.changes as changes_module
from notifier.config import config_from_dict
from notifier.errors import StorageError
from notifier.rules.matcher import Matcher
from notifier.service.changes import ChangeWatcher
from notifier.storage import Store
from notifier.users.cache import UserCache

pytestmark = pytest.mark.integration

RULE = {"user": "alice", "name": "git", "track": {"kind": "topics", "patterns": ["*.git.*"]},
        "destinations": ["email"]}
MESSAGE = {"topic": "org.fedoraproject.dev.git.push", "packages": [], "usernames": [],
           "agent": None, "severity": "info", "app": "git"}


@pytest.fixture
def world(tmp_path: Path) -> Any:
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]}])
    matcher = Matcher.from_store(store)
    users = UserCache(config_from_dict({}), store)
    watcher = ChangeWatcher(store, matcher, users)
    yield store, matcher, watcher
    store.close()


def matched(matcher: Matcher) -> list[str]:
    return [recipient.user for recipient in matcher.match(MESSAGE)]


def test_a_change_that_failed_to_apply_is_tried_again(
        world: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    store, matcher, watcher = world
    store.upsert_rules([RULE])
    seen = watcher.seen
    get_rule = store.get_rule
    failures = [StorageError("sqlite:///n.db: cannot read a rule: database is locked")] * 2

    def flaky(user: str, name: str) -> Any:
        if failures:
            raise failures.pop()
        return get_rule(user, name)

    monkeypatch.setattr(store, "get_rule", flaky)
    assert watcher.poll() == 0
    assert watcher.seen == seen  # not marked seen: it did not apply
    assert matched(matcher) == []
    assert "change" in (watcher.stalled() or "") and "database is locked" in watcher.stalled()
    assert watcher.poll() == 0
    assert watcher.poll() == 1
    assert matched(matcher) == ["alice"]
    assert watcher.seen == store.last_change()
    assert watcher.stalled() is None
    # Logged once for the two failed tries of the same change.
    assert sum("could not apply change" in r.getMessage() for r in caplog.records) == 1


def test_the_changes_after_a_failing_one_wait_so_they_apply_in_order(
        world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, matcher, watcher = world
    store.upsert_rules([RULE])
    store.remove_rule("alice", "git")  # the newer change must not be undone by the older
    get_rule = store.get_rule
    failing = [True]

    def flaky(user: str, name: str) -> Any:
        if failing.pop() if failing else False:
            raise StorageError("database is locked")
        return get_rule(user, name)

    monkeypatch.setattr(store, "get_rule", flaky)
    assert watcher.poll() == 0
    assert watcher.poll() == 2
    assert matched(matcher) == []


def test_after_repeated_failures_the_matcher_is_rebuilt_from_the_database(
        world: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    store, matcher, watcher = world
    store.upsert_rules([RULE])

    def broken(rule: Any) -> Any:
        raise RuntimeError("a bug in the index")

    monkeypatch.setattr(matcher, "replace_rule", broken)  # every incremental change fails
    for _ in range(changes_module.REBUILD_AFTER - 1):
        assert watcher.poll() == 0
        assert matched(matcher) == []
        assert "RuntimeError: a bug in the index" in (watcher.stalled() or "")
    watcher.poll()  # the last failed try rebuilds it, from the database
    assert matched(matcher) == ["alice"]
    assert watcher.seen == store.last_change()
    assert watcher.stalled() is None
    assert any("rebuilt the matcher from the database" in r.getMessage()
               for r in caplog.records)
    errors = [r for r in caplog.records if "could not apply change" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None  # once, with its traceback


def test_an_invalid_stored_rule_is_left_out_and_not_retried(world: Any) -> None:
    store, matcher, watcher = world
    store.upsert_rules([RULE])
    assert watcher.poll() == 1 and matched(matcher) == ["alice"]
    store.upsert_rules([{**RULE, "destinations": ["pager"]}])  # no such backend
    assert watcher.poll() == 1  # seen: a fresh start would leave it out too
    assert matched(matcher) == []
    assert watcher.stalled() is None
