"""The pipeline writes one inbox row per recipient, with why each rule matched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifier.config import Config, config_from_dict
from notifier.delivery.pipeline import Pipeline
from notifier.meta import Describer
from notifier.render import Renderer
from notifier.rules.matcher import Matcher
from notifier.storage import Store
from notifier.storage.inbox import Counts, Inbox
from notifier.storage.outbox import Outbox

pytestmark = pytest.mark.integration

TOPIC = "org.fedoraproject.dev.git.repo.update"


def envelope(n: int, **fields: Any) -> dict[str, Any]:
    return {"topic": TOPIC, "msg": {"log": f"commit {n}"}, "msg_id": f"2026-{n}",
            "timestamp": 1_700_000_000 + n, "i": 1, "username": "tester", **fields}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_from_dict({"meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False},
                             "email": {"maildir": str(tmp_path / "Maildir")}},
                            str(tmp_path / "notifier.toml"))


def test_one_row_per_recipient_whatever_the_destinations(config: Config, store: Store) -> None:
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]},
                        {"name": "bob", "emails": ["bob@example.org"]}])
    store.upsert_rules([
        {"user": "alice", "name": "git", "track": {"kind": "topics", "patterns": ["*.git.*"]},
         "destinations": ["email", "rss"]},
        {"user": "alice", "name": "tester", "track": {"kind": "users-followed",
                                                      "users": ["tester"]},
         "destinations": ["irc"]},
        {"user": "bob", "name": "all", "track": {"kind": "topics", "patterns": ["*"]},
         "destinations": ["rss"]},
        # a rule whose user is not known: no row
        {"user": "ghost", "name": "all", "track": {"kind": "topics", "patterns": ["*"]},
         "destinations": ["rss"]}])
    pipeline = Pipeline(config, Outbox(store), Describer(config, schemas={}),
                        Matcher.from_store(store), Renderer(config, secret=b"s" * 32),
                        store.get_user)
    result = pipeline.process([envelope(1), envelope(2, username="someone")])
    assert result.new_messages == 2
    pipeline.process([envelope(1)])  # heard again: no second row
    inbox = Inbox(store)
    assert inbox.counts("alice") == Counts(2, 2)
    assert inbox.counts("bob") == Counts(2, 2)
    assert inbox.counts("ghost") == Counts(0, 0)
    newest, oldest = inbox.page("alice").items
    assert (oldest.msg_id, oldest.topic, oldest.title, oldest.timestamp) == (
        "2026-1", TOPIC, "commit 1", 1_700_000_001.0)
    assert oldest.rules == ("git", "tester")
    assert oldest.why == {"git": "topic matches '*.git.*'",
                          "tester": "agent 'tester' is followed"}
    assert newest.rules == ("git",) and newest.why == {"git": "topic matches '*.git.*'"}
