"""Feed items: what the RSS/Atom backend keeps for each user, in notifier's database.

The ``feed_items`` table lives in the project's database (SQLite or
PostgreSQL), so the process that delivers (``notifier serve``) and the one
that answers feed requests over HTTP see the same items. It is created by
the Alembic migration ``0002`` in ``notifier/storage/migrations/versions``.

Each user keeps at most ``[delivery] feed_items`` items: adding one deletes
the oldest beyond that, in the same transaction. Items are ordered by their
row id, which grows with every insert, so "newest" means "stored last" even
when the messages' own timestamps arrive out of order. Storing the same
``(user, msg_id)`` twice keeps the first copy: a retried delivery does not
show twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StorageError
from ..storage.engine import WRITE_OPTION
from ..storage.schema import BigId, metadata

if TYPE_CHECKING:
    from ..config import Config

feed_items = Table(
    "feed_items", metadata,
    Column("id", BigId, primary_key=True),
    Column("username", String(255), nullable=False),
    Column("msg_id", Text, nullable=False),
    Column("title", Text, nullable=False),
    # Rendered HTML, as the render stage made it; sanitized when the feed is written.
    Column("content", Text, nullable=False),
    Column("link", Text, nullable=True),
    Column("topic", Text, nullable=False),
    Column("app", Text, nullable=False),
    # Seconds since the epoch: the message's own time, else when it was stored.
    Column("published", Float, nullable=False),
    Column("stored_at", Float, nullable=False),
    UniqueConstraint("username", "msg_id"),
    Index(None, "username", "id"),
)


@dataclass(frozen=True)
class FeedItem:
    """One stored feed item."""

    id: int
    user: str
    msg_id: str
    title: str
    content: str
    link: str | None
    topic: str
    app: str
    published: float
    stored_at: float


class FeedStore:
    """Adds and reads feed items; safe to share between threads.

    ``keep`` is how many items each user keeps. Database failures raise
    :class:`~notifier.errors.StorageError` naming the database (without its
    password).
    """

    def __init__(self, engine: Engine, keep: int, *, display_url: str | None = None,
                 clock: Callable[[], float] = time.time,
                 on_close: Callable[[], None] | None = None):
        if keep < 1:
            raise ValueError(f"a feed must keep at least one item, not {keep}")
        self.engine = engine
        self.keep = keep
        self.display_url = display_url or engine.url.render_as_string(hide_password=True)
        self._clock = clock
        self._on_close = on_close or engine.dispose

    @classmethod
    def from_config(cls, config: Config) -> FeedStore:
        """The feed store in ``config``'s database, created and migrated on first use."""
        from ..storage import Store

        store = Store.from_config(config)
        return cls(store.engine, config.delivery.feed_items, display_url=store.display_url,
                   on_close=store.close)

    def close(self) -> None:
        """Close pooled connections. The store can still be used afterwards."""
        self._on_close()

    def add(self, user: str, msg_id: str, title: str, content: str, *, link: str | None = None,
            topic: str = "", app: str = "", published: float | None = None) -> bool:
        """Store one item for ``user``; False when it was stored before (nothing changes)."""
        now = self._clock()
        row = {"username": user, "msg_id": msg_id, "title": title, "content": content,
               "link": link, "topic": topic, "app": app,
               "published": published if published else now, "stored_at": now}
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    added = conn.execute(self._insert(conn).values(**row)).rowcount == 1
                    if added:
                        self._trim(conn, user)
        except SQLAlchemyError as exc:
            raise self._error(f"store feed item {msg_id} for {user!r}", exc) from exc
        return added

    def items(self, user: str, limit: int | None = None) -> list[FeedItem]:
        """``user``'s items, newest first: at most ``limit``, else the ``keep`` newest."""
        query = (select(feed_items).where(feed_items.c.username == user)
                 .order_by(feed_items.c.id.desc()).limit(limit or self.keep))
        try:
            with self.engine.connect() as conn, conn.begin():
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise self._error(f"read the feed of {user!r}", exc) from exc
        return [_item(row) for row in rows]

    def _insert(self, conn: Connection) -> Any:
        # Only SQLite and PostgreSQL are supported (notifier.storage.engine), and both have
        # ON CONFLICT DO NOTHING.
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        return dialect_insert(feed_items).on_conflict_do_nothing(
            index_elements=["username", "msg_id"])

    def _trim(self, conn: Connection, user: str) -> None:
        oldest_kept = conn.execute(
            select(feed_items.c.id).where(feed_items.c.username == user)
            .order_by(feed_items.c.id.desc()).offset(self.keep - 1).limit(1)).scalar()
        if oldest_kept is not None:
            conn.execute(delete(feed_items).where(feed_items.c.username == user,
                                                  feed_items.c.id < oldest_kept))

    def _error(self, action: str, exc: SQLAlchemyError) -> StorageError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        lowered = detail.lower()
        hint = ""
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            hint = " (is the schema up to date? run 'notifier db upgrade')"
        return StorageError(f"{self.display_url}: cannot {action}: {detail}{hint}")


def _item(row: Any) -> FeedItem:
    return FeedItem(id=row.id, user=row.username, msg_id=row.msg_id, title=row.title,
                    content=row.content, link=row.link, topic=row.topic, app=row.app,
                    published=row.published, stored_at=row.stored_at)
