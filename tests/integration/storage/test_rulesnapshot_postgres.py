"""The rules snapshot on PostgreSQL: written by a full load, used by the next, with later
changes applied (bytea, BIGINT sequence numbers and the change log as on SQLite)."""

from __future__ import annotations

import logging

import pytest

from benchmarks.match import World
from notifier.rules import Matcher
from notifier.rules.loading import ENV
from notifier.storage import Store, rulesnapshot
from tests.integration.test_storage_postgres import _schema_url, schemas  # noqa: F401

pytestmark = pytest.mark.integration

DESTS = ["desktop", "email", "irc", "rss"]


def test_snapshot_round_trip_on_postgresql(schemas, caplog,  # noqa: F811
                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ENV, raising=False)
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    world = World(11, 200)
    with Store(_schema_url(schemas)) as store:
        store.upsert_rules([rule for user in world.users for rule in world.rules_of(user)])
        store.apply_ownership({"kernel": {"users": [world.users[0]], "groups": ["k-sig"]}})
        full = Matcher.from_store(store, destinations=DESTS)
        assert "wrote the rules snapshot" in caplog.text
        stored = rulesnapshot.read(store)
        assert stored is not None and stored.rules == len(full.index) > 500
        store.upsert_rules([{"user": "zed", "name": "Kernel", "destinations": ["email"],
                             "track": {"kind": "artifacts-followed", "packages": ["kernel"]}}])
        caplog.clear()
        loaded = Matcher.from_store(store, destinations=DESTS)
        assert "from the snapshot" in caplog.text and "then 1 later change(s)" in caplog.text
        again = Matcher.from_store(store, destinations=DESTS, snapshot=False)
        record = {"topic": "t", "packages": ["kernel"], "usernames": [], "agent": None}
        assert loaded.match(record, explain=True) == again.match(record, explain=True)
        assert "zed" in [r.user for r in loaded.match(record)]
        assert sorted(r.to_dict()["name"] + r.user for r in loaded.rules()) == \
            sorted(r.to_dict()["name"] + r.user for r in again.rules())
