"""The RSS/Atom backend against a real database file, other processes and feedparser.

The shared behaviour is in contract.py; these tests cover what only feeds
have: trimming to ``[delivery] feed_items``, idempotent stores, several
processes on one database, the HTTP validators on live data, the migration.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from notifier.backends.base import Notification
from notifier.backends.feedstore import FeedStore
from notifier.backends.rss import RssBackend, conditional_response, feed_validators
from notifier.config import Config, config_from_dict
from notifier.errors import ConfigError, StorageError, TemporaryDeliveryError
from notifier.storage.schema import metadata
from tests.conftest import ROOT, free_port

from .peers_rss import AtomPeer, entry_text, parse_feed


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
from notifier.backends.base import Notification
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
    store.close()
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
