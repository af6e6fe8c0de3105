"""Loading the matcher from a real (SQLite) store."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.errors import RuleError
from notifier.rules import Matcher
from notifier.storage import Store

GOOD = {"user": "alice", "name": "Mine", "track": {"kind": "artifacts-owned"},
        "destinations": ["email"]}
STALE = {"user": "bob", "name": "Pager", "track": {"kind": "related-events"},
         "destinations": ["pager"]}


@pytest.fixture
def store(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as s:
        s.upsert_rules([GOOD, STALE])
        s.apply_ownership({"kernel": {"users": ["alice"], "groups": ["kernel-sig"]}})
        yield s


def record(**over):
    return {"topic": "t", "packages": ["kernel"], "usernames": ["bob"], "agent": None,
            "severity": "info", **over}


def test_a_stored_rule_that_no_longer_validates_is_named(store):
    with pytest.raises(RuleError) as info:
        Matcher.from_store(store, destinations=["email"])
    text = str(info.value)
    assert text.startswith("1 stored rule(s) are invalid:")
    assert "database, user 'bob': rule ('Pager'): destinations[0]: unknown destination " \
           "'pager'" in text


def test_invalid_rules_can_be_skipped_and_owners_filtered(store):
    skipped: list[str] = []
    m = Matcher.from_store(store, destinations=["email"], on_invalid=skipped.append)
    assert len(skipped) == 1 and "'Pager'" in skipped[0]
    assert [r.user for r in m.match(record())] == ["alice"]
    assert m.index.group_owners == {"kernel": {"kernel-sig"}}
    m = Matcher.from_store(store, destinations=["email", "pager"],
                           owner_filter=lambda package, kind, name: kind == "group")
    assert [r.user for r in m.match(record())] == ["bob"]
