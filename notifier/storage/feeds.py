"""Feed items: what the feed destination keeps for each user, in notifier's database.

The ``feed_items`` table (:mod:`notifier.storage.schema`) lives in the
project's database (SQLite or PostgreSQL), so the process that delivers
(the feed backend) and the one that answers feed requests over HTTP see the
same items.

Each user keeps at most ``[delivery] feed_items`` items: adding deletes the
oldest beyond that, in the same transaction. :func:`write_items` stores a
whole batch in the caller's transaction and trims each user in it once: the
outbox uses it to store the feed's notifications in the transaction that
records them (:meth:`~notifier.storage.outbox.Outbox.record_and_claim`), and
:meth:`FeedStore.add_many`, in a transaction of its own, for what the feed
backend delivers later (digests). Items are ordered by their
row id, which grows with every insert, so "newest" means "stored last" even
when the messages' own timestamps arrive out of order. Storing the same
``(user, msg_id)`` twice keeps the first copy: a retried delivery does not
show twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StorageError
from ..notification import Notification
from .engine import WRITE_OPTION, pg_columns
from .schema import feed_items
from .writelock import write_lock_for

if TYPE_CHECKING:
    from ..config import Config

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


@dataclass(frozen=True)
class NewFeedItem:
    """One item to store for ``user``; ``published`` None (or 0) means "when stored"."""

    user: str
    msg_id: str
    title: str
    content: str
    link: str | None = None
    topic: str = ""
    app: str = ""
    published: float | None = None

    @classmethod
    def of(cls, notification: Notification) -> NewFeedItem | None:
        """What the feed keeps of ``notification``; None when its title or content is missing
        (it was not rendered for the feed)."""
        title, content = notification.content.get("title"), notification.content.get("content")
        if not isinstance(title, str) or not isinstance(content, str):
            return None
        return cls(notification.user, notification.msg_id, title, content,
                   link=notification.link, topic=notification.topic, app=notification.app,
                   published=notification.timestamp or None)


# PostgreSQL takes the items as one binary array per column, and trims every user who
# got one in a single statement (see notifier.storage.outbox); the trim is the one of
# _SQLITE_TRIM, for all the users at once.
_PG_INSERT = (
    "INSERT INTO feed_items (username, msg_id, title, content, link, topic, app, published, "
    "stored_at) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::float8[], %b::float8[]) "
    "ON CONFLICT (username, msg_id) DO NOTHING RETURNING username, msg_id")
_PG_TRIM = (
    "DELETE FROM feed_items AS f USING unnest(%b::text[]) AS u(name) "
    "WHERE f.username = u.name AND f.id < (SELECT newer.id FROM feed_items AS newer "
    "WHERE newer.username = u.name ORDER BY newer.id DESC LIMIT 1 OFFSET %s)")
# SQLite: the same, written for the driver (building each row's parameters through
# SQLAlchemy cost more than SQLite's work on them): a multi-row insert per chunk, within
# SQLite's 32,766 parameters, and a trim per user. The trim deletes everything of the user
# older than their keep-th newest item; with fewer, the subquery is NULL, "id < NULL" holds
# for no row and nothing goes.
_SQLITE_INSERT = (
    "INSERT INTO feed_items (username, msg_id, title, content, link, topic, app, published, "
    "stored_at) VALUES {} ON CONFLICT (username, msg_id) DO NOTHING RETURNING username, msg_id")
_SQLITE_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SQLITE_CHUNK = 1000
_SQLITE_TRIM = (
    "DELETE FROM feed_items WHERE username = ? AND id < (SELECT newer.id FROM feed_items AS "
    "newer WHERE newer.username = ? ORDER BY newer.id DESC LIMIT 1 OFFSET ?)")


class FeedStore:
    """Adds and reads feed items; safe to share between threads.

    ``keep`` is how many items each user keeps. Database failures raise
    :class:`~notifier.errors.StorageError` naming the database (without its
    password).
    """

    def __init__(self, engine: Engine, keep: int, *, display_url: str | None = None,
                 clock: Callable[[], float] = time.time,
                 on_close: Callable[[], None] | None = None, write_lock: Any = None):
        if keep < 1:
            raise ValueError(f"a feed must keep at least one item, not {keep}")
        self.engine = engine
        # The Store's lock, when there is one, so this process's writers queue together.
        self._own_lock = write_lock is None
        self._write_lock = write_lock if write_lock is not None else write_lock_for(engine.url)
        self.keep = keep
        self.display_url = display_url or engine.url.render_as_string(hide_password=True)
        self._clock = clock
        self._on_close = on_close or engine.dispose

    @classmethod
    def from_config(cls, config: Config) -> FeedStore:
        """The feed store in ``config``'s database, created and migrated on first use."""
        from .store import Store

        store = Store.from_config(config)
        return cls(store.engine, config.delivery.feed_items, display_url=store.display_url,
                   on_close=store.close, write_lock=store.write_lock)

    def close(self) -> None:
        """Close pooled connections. The store can still be used afterwards."""
        self._on_close()
        if self._own_lock:
            self._write_lock.close()

    def add(self, user: str, msg_id: str, title: str, content: str, *, link: str | None = None,
            topic: str = "", app: str = "", published: float | None = None) -> bool:
        """Store one item for ``user``; False when it was stored before (nothing changes)."""
        return self.add_many([NewFeedItem(user, msg_id, title, content, link=link, topic=topic,
                                          app=app, published=published)])[0]

    def add_many(self, items: Iterable[NewFeedItem]) -> list[bool]:
        """Store ``items`` in one transaction; for each, whether it was new.

        An item whose ``(user, msg_id)`` is stored already, or comes earlier
        in ``items``, is skipped (False). Afterwards every user who got a new
        item keeps only the newest ``keep``, with one DELETE per user. Either
        everything is stored or, on a database error, nothing is.
        """
        batch = list(items)
        if not batch:
            return []
        now = self._clock()
        try:
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    inserted = write_items(conn, batch, self.keep, now)
        except SQLAlchemyError as exc:
            raise self._error(_describe(batch), exc) from exc
        # The first occurrence of a (user, msg_id) is the one that was inserted.
        outcomes = []
        for item in batch:
            key = (item.user, item.msg_id)
            outcomes.append(key in inserted)
            inserted.discard(key)
        return outcomes

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

    def _error(self, action: str, exc: SQLAlchemyError) -> StorageError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        lowered = detail.lower()
        hint = ""
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            hint = " (is the schema up to date? run 'notifier db upgrade')"
        return StorageError(f"{self.display_url}: cannot {action}: {detail}{hint}")


def write_items(conn: Connection, items: Iterable[NewFeedItem], keep: int, now: float
                ) -> set[tuple[str, str]]:
    """Insert ``items`` in ``conn``'s transaction, then keep each user who got one to ``keep``.

    Returns the ``(user, msg_id)`` pairs inserted: an item stored before, or
    earlier in ``items``, is skipped. The outbox calls this too, to store the
    feed's notifications with the transaction that records them.
    """
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for item in items:
        rows.setdefault((item.user, item.msg_id), (
            item.user, item.msg_id, item.title, item.content, item.link, item.topic, item.app,
            item.published or now, now))
    if not rows:
        return set()
    values = list(rows.values())
    if conn.dialect.name == "postgresql":
        inserted = {tuple(r) for r in conn.exec_driver_sql(
            _PG_INSERT, pg_columns(values, "tttttttff"))}
        users = sorted({user for user, _ in inserted})
        if users:
            conn.exec_driver_sql(_PG_TRIM, (users, keep - 1))
        return inserted  # type: ignore[return-value]
    inserted = set()
    for start in range(0, len(values), _SQLITE_CHUNK):
        chunk = values[start:start + _SQLITE_CHUNK]
        inserted.update(tuple(r) for r in conn.exec_driver_sql(
            _SQLITE_INSERT.format(", ".join([_SQLITE_ROW] * len(chunk))),
            tuple(value for row in chunk for value in row)))
    users = sorted({user for user, _ in inserted})
    if users:
        conn.exec_driver_sql(_SQLITE_TRIM, [(user, user, keep - 1) for user in users])
    return inserted  # type: ignore[return-value]


def _describe(batch: list[NewFeedItem]) -> str:
    if len(batch) == 1:
        return f"store feed item {batch[0].msg_id} for {batch[0].user!r}"
    users = sorted({item.user for item in batch})
    shown = ", ".join(repr(user) for user in users[:5])
    more = f" and {len(users) - 5} more" if len(users) > 5 else ""
    return f"store {len(batch)} feed items for {shown}{more}"


def _item(row: Any) -> FeedItem:
    return FeedItem(id=row.id, user=row.username, msg_id=row.msg_id, title=row.title,
                    content=row.content, link=row.link, topic=row.topic, app=row.app,
                    published=row.published, stored_at=row.stored_at)
