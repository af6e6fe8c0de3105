"""The RSS/Atom backend against a real database file, other processes and feedparser.

The shared behaviour is in contract.py; these tests cover what only feeds
have: trimming to ``[delivery] feed_items``, idempotent stores, batches stored
in one transaction (on SQLite and PostgreSQL), several processes on one
database, the HTTP validators on live data, the migration.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, inspect, text

from notifier.backends.rss import RssBackend
from notifier.config import Config, config_from_dict
from notifier.errors import (
    ConfigError,
    PermanentDeliveryError,
    StorageError,
    TemporaryDeliveryError,
)
from notifier.notification import Notification
from notifier.render.feed import conditional_response, feed_validators
from notifier.storage.feeds import FeedStore, NewFeedItem
from notifier.storage.schema import metadata
from tests.conftest import ROOT, free_port, require_service

from .peers_rss import PG_URL, AtomPeer, entry_text, parse_feed


def config_for(tmp_path: Path, feed_items: int = 100) -> Config:
    return config_from_dict({"database_url": f"sqlite:///{tmp_path / 'feeds.db'}",
                             "delivery": {"feed_items": feed_items}},
                            str(tmp_path / "notifier.toml"))


def note(user: str, i: int, msg_id: str | None = None) -> Notification:
    return Notification(user=user, destination="rss", address=user,
                        msg_id=msg_id or f"2025-{user}-{i}", topic="org.example.build",
                        app="koji", content={"title": f"{user} #{i}", "content": f"<p>{i}</p>"},
                        link=f"https://koji.example.org/{i}", timestamp=1_700_000_000.0 + i)


def titles(store: FeedStore, user: str) -> list[str]:
    return [item.title for item in store.items(user)]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a PostgreSQL schema of the test's own that is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'feeds.db'}"
        return
    require_service("PostgreSQL", 5432)
    schema = f"feeds_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        engine.dispose()


def config_at(url: str, feed_items: int) -> Config:
    return config_from_dict({"database_url": url, "delivery": {"feed_items": feed_items}},
                            "notifier.toml")


def new(user: str, i: int, title: str = "") -> NewFeedItem:
    return NewFeedItem(user, f"2025-{user}-{i}", title or f"{user} #{i}", f"<p>{i}</p>")


def test_each_user_keeps_the_newest_feed_items(tmp_path: Path) -> None:
    config = config_for(tmp_path, feed_items=3)
    with RssBackend(config) as backend:
        for i in range(5):
            backend.send(note("alice", i))
        backend.send(note("bob", 0))
    store = FeedStore.from_config(config)
    assert titles(store, "alice") == ["alice #4", "alice #3", "alice #2"]
    assert titles(store, "bob") == ["bob #0"]
    store.close()


def test_the_same_message_is_stored_once(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    with RssBackend(config) as backend:
        backend.send(note("alice", 1))
        backend.send(note("alice", 1))
        backend.send(note("alice", 2))
    store = FeedStore.from_config(config)
    assert titles(store, "alice") == ["alice #2", "alice #1"]
    assert store.add("alice", "2025-alice-1", "again", "<p>again</p>") is False
    assert titles(store, "alice") == ["alice #2", "alice #1"]
    store.close()


WRITER = """
import sys
from notifier.notification import Notification
from notifier.backends.rss import RssBackend
from notifier.config import config_from_dict

url, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = config_from_dict({"database_url": url, "delivery": {"feed_items": 1000}})
with RssBackend(config) as backend:
    for i in range(count):
        backend.send(Notification(
            user="alice", destination="rss", address="alice", msg_id=f"{tag}-{i}",
            topic="org.example.build", app="koji",
            content={"title": f"{tag} {i}", "content": f"<p>{tag} {i}</p>"}))
"""


def test_two_writer_processes_and_a_reader(tmp_path: Path) -> None:
    """As in production: notifier serve writes, the HTTP side (another process) reads."""
    url = f"sqlite:///{tmp_path / 'feeds.db'}"
    count = 15
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, tag, str(count)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for tag in ("one", "two")]
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    peer = AtomPeer(tmp_path)
    items, data = peer.feed("alice")
    peer.stop()
    entries = parse_feed(data).entries
    assert len(entries) == len(items) == 2 * count
    for tag in ("one", "two"):
        mine = [item.title for item in reversed(items) if item.title.startswith(tag)]
        assert mine == [f"{tag} {i}" for i in range(count)]
    assert {entry_text(e).splitlines()[0] for e in entries} == {i.title for i in items}


def test_validators_follow_what_is_stored(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    store = FeedStore.from_config(config)
    with RssBackend(config) as backend:
        backend.send(note("alice", 1))
        etag, modified = feed_validators(store.items("alice"), "atom")
        assert modified is not None
        assert conditional_response({"If-None-Match": etag}, etag, modified)
        assert conditional_response({"If-Modified-Since": modified}, etag, modified)
        backend.send(note("alice", 2))
    new_etag, new_modified = feed_validators(store.items("alice"), "atom")
    store.close()
    assert new_etag != etag
    assert not conditional_response({"If-None-Match": etag}, new_etag, new_modified)
    assert conditional_response({"If-None-Match": new_etag}, new_etag, new_modified)


def test_the_migration_creates_the_table_as_declared(tmp_path: Path) -> None:
    store = FeedStore.from_config(config_for(tmp_path))
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        tables = inspect(conn).get_table_names()
    store.close()
    assert "feed_items" in tables and "feed_items" in metadata.tables
    assert [d for d in diffs if "feed_items" in repr(d)] == []


def test_unreachable_database_is_temporary(tmp_path: Path) -> None:
    port = free_port()
    config = config_from_dict(
        {"database_url": f"postgresql+psycopg://postgres:secret@127.0.0.1:{port}/test"})
    backend = RssBackend(config)
    started = time.monotonic()
    with pytest.raises(TemporaryDeliveryError) as info:
        backend.send(note("alice", 1))
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "alice" in message and "2025-alice-1" in message and f":{port}" in message
    assert "secret" not in message
    assert isinstance(info.value.__cause__, StorageError)
    backend.close()


def test_feed_items_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"notifier.toml.*feed_items"):
        RssBackend(config_for(tmp_path, feed_items=0)).setup()


# -- batches -------------------------------------------------------------------

def test_add_many_skips_what_is_stored_and_repeats_in_the_batch(database_url: str) -> None:
    store = FeedStore.from_config(config_at(database_url, 10))
    try:
        assert store.add("alice", "2025-alice-1", "alice #1", "<p>1</p>") is True
        added = store.add_many([new("alice", 1, "again"), new("alice", 2), new("bob", 1),
                                new("alice", 2, "repeated"), new("alice", 3)])
        assert added == [False, True, True, False, True]
        assert titles(store, "alice") == ["alice #3", "alice #2", "alice #1"]
        assert titles(store, "bob") == ["bob #1"]
        assert store.add_many([new("alice", 3), new("bob", 1)]) == [False, False]
        assert store.add_many([]) == []
        assert titles(store, "alice") == ["alice #3", "alice #2", "alice #1"]
    finally:
        store.close()


def test_add_many_trims_each_user_of_the_batch(database_url: str) -> None:
    store = FeedStore.from_config(config_at(database_url, 3))
    try:
        store.add_many([new("carol", i) for i in range(3)] + [new("dave", i) for i in range(3)])
        batch = ([new("alice", i) for i in range(5)] + [new("bob", 0), new("bob", 1)]
                 + [new("carol", 3), new("carol", 4)])
        # interleaved, as a batch of claimed rows comes
        store.add_many(sorted(batch, key=lambda item: item.msg_id[-1]))
        assert titles(store, "alice") == ["alice #4", "alice #3", "alice #2"]
        assert titles(store, "bob") == ["bob #1", "bob #0"]
        assert titles(store, "carol") == ["carol #4", "carol #3", "carol #2"]
        assert titles(store, "dave") == ["dave #2", "dave #1", "dave #0"]
        with store.engine.connect() as conn:
            counts = dict(conn.execute(text(
                "SELECT username, COUNT(*) FROM feed_items GROUP BY username")).all())
        assert counts == {"alice": 3, "bob": 2, "carol": 3, "dave": 3}
    finally:
        store.close()


def test_a_batch_is_one_transaction_with_one_delete_per_user(tmp_path: Path) -> None:
    store = FeedStore.from_config(config_for(tmp_path, feed_items=2))
    statements: list[tuple[str, int]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        statements.append((statement.split()[0].upper(),
                           len(parameters) if executemany else 1))

    def commit(conn: Any) -> None:
        statements.append(("COMMIT", 1))

    event.listen(store.engine, "before_cursor_execute", record)
    event.listen(store.engine, "commit", commit)
    try:
        store.add_many([new(user, i) for i in range(50) for user in ("alice", "bob", "carol")]
                       + [new("alice", 0)])
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
        event.remove(store.engine, "commit", commit)
    assert titles(store, "bob") == ["bob #49", "bob #48"]
    store.close()
    assert [kind for kind, _ in statements] == ["BEGIN", "INSERT", "DELETE", "COMMIT"]
    assert [runs for kind, runs in statements if kind == "DELETE"] == [3]


def test_a_failed_batch_stores_nothing(tmp_path: Path) -> None:
    store = FeedStore.from_config(config_for(tmp_path))
    broken = NewFeedItem("bob", "2025-bob-1", "bob #1", None)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match=r"feeds\.db: cannot store 2 feed items for "
                                           r"'alice', 'bob': .*NOT NULL"):
        store.add_many([new("alice", 1), broken])
    assert titles(store, "alice") == []
    store.close()


def test_send_batch_reports_each_notification(database_url: str) -> None:
    config = config_at(database_url, 2)
    untitled = Notification(user="bob", destination="rss", address="bob", msg_id="2025-bob-x",
                            topic="org.example.build", app="koji",
                            content={"content": "<p>no title</p>"})
    batch = [note("alice", 0), untitled, note("alice", 1), note("bob", 0), note("alice", 2),
             note("alice", 1)]
    with RssBackend(config) as backend:
        outcomes = backend.send_batch(batch)
    assert [type(o).__name__ for o in outcomes] == [
        "NoneType", "PermanentDeliveryError", "NoneType", "NoneType", "NoneType", "NoneType"]
    assert "'bob'" in str(outcomes[1]) and "2025-bob-x" in str(outcomes[1])
    assert "'title'" in str(outcomes[1])
    store = FeedStore.from_config(config)
    try:
        assert titles(store, "alice") == ["alice #2", "alice #1"]
        assert titles(store, "bob") == ["bob #0"]
        item = store.items("bob")[0]
        assert (item.link, item.topic, item.app, item.published) == (
            "https://koji.example.org/0", "org.example.build", "koji", 1_700_000_000.0)
    finally:
        store.close()


def test_send_batch_of_nothing_but_bad_notifications_needs_no_database() -> None:
    # the database is unreachable: it must not be asked
    config = config_from_dict(
        {"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"})
    bad = Notification(user="alice", destination="rss", address="alice", msg_id="m",
                       topic="t", app="a", content={"title": "only a title"})
    backend = RssBackend(config)
    try:
        outcomes = backend.send_batch([bad, bad])
    finally:
        backend.close()
    assert all(isinstance(o, PermanentDeliveryError) for o in outcomes)
    assert "'content'" in str(outcomes[0])
    assert backend.send_batch([]) == []


def test_database_error_fails_the_whole_batch_temporarily(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    bad = Notification(user="carol", destination="rss", address="carol", msg_id="2025-c",
                       topic="t", app="a", content={})
    with RssBackend(config) as backend:
        backend.send(note("alice", 0))
        store = FeedStore.from_config(config)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE feed_items"))
        store.close()
        outcomes = backend.send_batch([note("alice", 1), bad, note("bob", 1)])
    assert isinstance(outcomes[1], PermanentDeliveryError)
    for outcome, who in ((outcomes[0], "'alice'"), (outcomes[2], "'bob'")):
        assert isinstance(outcome, TemporaryDeliveryError)
        assert who in str(outcome) and "no such table" in str(outcome)
        assert "notifier db upgrade" in str(outcome)
        assert isinstance(outcome.__cause__, StorageError)
    assert outcomes[0].__cause__ is outcomes[2].__cause__
