"""Receiving ends for the RSS/Atom backend: the feed database, read back through feedparser.

What "arrived" is what a feed reader gets: the peer reads the user's items
from the database (its own connection, as the HTTP side would), renders the
feed with :func:`notifier.render.feed.render_feed` and parses it with
feedparser, failing on any parse error (``bozo``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, ClassVar

import feedparser
from sqlalchemy import create_engine, text

from notifier.config import config_from_dict
from notifier.render.feed import FeedFormat, render_feed
from notifier.storage.feeds import FeedItem, FeedStore
from tests.conftest import poll, require_service

from .contract import BasePeer, Delivered, html_to_text

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def parse_feed(data: bytes) -> Any:
    """feedparser's result for ``data``; an AssertionError if it was not well-formed."""
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, f"feedparser: {parsed.get('bozo_exception')!r}\n{data.decode()}"
    return parsed


def entry_text(entry: Any) -> str:
    """A feed entry as a reader shows it: the title, then the content as text."""
    if "content" in entry:
        body = entry.content[0].value
    else:
        body = entry.get("summary", "")
    return f"{entry.title}\n{html_to_text(body)}"


class FeedPeer(BasePeer):
    """A feed database; each user's feed is rendered as ``fmt`` and parsed."""

    name: ClassVar[str] = "rss"
    fmt: ClassVar[FeedFormat] = "atom"

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self._users: list[str] = []
        self._returned: dict[str, int] = {}
        self._store: FeedStore | None = None

    def database_url(self) -> str:
        return f"sqlite:///{self.tmp_path / 'feeds.db'}"

    def config(self) -> dict[str, Any]:
        return {"database_url": self.database_url(), "delivery": {"feed_items": 1000}}

    def stop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def address(self, user: str) -> str:
        if user not in self._users:
            self._users.append(user)
        return user

    def feed(self, user: str) -> tuple[list[FeedItem], bytes]:
        """``user``'s items (newest first) and their feed, as served."""
        if self._store is None:
            self._store = FeedStore.from_config(
                config_from_dict(self.config(), str(self.tmp_path / "notifier.toml")))
        items = self._store.items(user)
        return items, render_feed(user, items, self.fmt, f"https://notifier.example.org/"
                                  f"feeds/{user}.{self.fmt}")

    def received(self, timeout: float) -> list[Delivered]:
        return poll(self._new, timeout)

    def _new(self) -> list[Delivered]:
        found: list[tuple[int, Delivered]] = []
        for user in self._users:
            items, data = self.feed(user)
            entries = parse_feed(data).entries
            assert len(entries) == len(items)
            pairs = list(zip(reversed(items), reversed(entries), strict=True))
            for item, entry in pairs[self._returned.get(user, 0):]:
                found.append((item.id, Delivered(user, entry_text(entry), entry)))
            self._returned[user] = len(pairs)
        return [delivered for _, delivered in sorted(found, key=lambda pair: pair[0])]


class AtomPeer(FeedPeer):
    """Atom feeds from a SQLite database."""

    id: ClassVar[str] = "rss-atom-sqlite"
    fmt: ClassVar[FeedFormat] = "atom"


class Rss2Peer(FeedPeer):
    """RSS 2.0 feeds from a SQLite database."""

    id: ClassVar[str] = "rss-rss2-sqlite"
    fmt: ClassVar[FeedFormat] = "rss"


class PostgresFeedPeer(FeedPeer):
    """Atom feeds from PostgreSQL, in a schema of its own that is dropped afterwards."""

    id: ClassVar[str] = "rss-atom-postgresql"
    fmt: ClassVar[FeedFormat] = "atom"

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.schema = f"feeds_{uuid.uuid4().hex[:12]}"

    def database_url(self) -> str:
        return f"{PG_URL}?options=-csearch_path%3D{self.schema}"

    def start(self) -> None:
        require_service("PostgreSQL", 5432)
        engine = create_engine(PG_URL)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        finally:
            engine.dispose()

    def stop(self) -> None:
        super().stop()
        engine = create_engine(PG_URL)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
        finally:
            engine.dispose()
