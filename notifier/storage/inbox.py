"""The inbox: every notification each user got, whatever its destinations.

One row per ``(user, message)``, holding what the inbox shows (the message's
summary as ``title``, its link, application, topic, severity and time), the
names of the user's rules that matched and why each did, and a read flag.
The rows are written by :meth:`notifier.storage.outbox.Outbox.record_and_claim`,
in the transaction that records the message and its outbox rows
(:func:`write_rows`), and only for messages new to the history, so a message
heard twice is in the inbox once without a unique index to pay for.

:class:`Inbox` reads a user's rows newest first, a page at a time through an
opaque cursor; marks rows read or unread; marks everything read up to a
given row (so that what arrived meanwhile stays unread); counts; and prunes
rows as old as the history's retention.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from ..errors import InputError
from .engine import json_dumps, pg_columns
from .rulecounts import count_sends, prune_sends
from .schema import inbox
from .store import Store

#: the most rows one page holds
MAX_LIMIT = 100
_CHUNK = 500
_CURSOR_PREFIX = "inbox:"


@dataclass(frozen=True)
class InboxItem:
    """One notification in a user's inbox."""

    id: int
    user: str
    msg_id: str
    title: str
    link: str | None
    app: str
    topic: str
    severity: str
    timestamp: float
    created_at: float
    rules: tuple[str, ...]
    #: rule name -> why it matched, as the matcher explained it when the message came
    why: dict[str, str] | None
    read: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (without ``why``: see the why route)."""
        return {"id": self.id, "msg_id": self.msg_id, "title": self.title, "link": self.link,
                "app": self.app, "topic": self.topic, "severity": self.severity,
                "timestamp": self.timestamp, "created_at": self.created_at,
                "rules": list(self.rules), "read": self.read}


@dataclass(frozen=True)
class Counts:
    """How many notifications a user has in the inbox, and how many of them are unread."""

    total: int
    unread: int


@dataclass(frozen=True)
class Page:
    """One page of an inbox, newest first; ``next_cursor`` is None on the last page."""

    items: list[InboxItem]
    next_cursor: str | None


def inbox_row(user: str, msg_id: str, *, title: str, link: str | None, app: str, topic: str,
              severity: str, timestamp: float, rules: Iterable[str],
              why: dict[str, str] | None = None) -> dict[str, Any]:
    """One inbox row as :func:`write_rows` takes it."""
    return {"user": user, "msg_id": msg_id, "title": title, "link": link, "app": app,
            "topic": topic, "severity": severity, "timestamp": timestamp,
            "rules": list(rules), "why": why}


# PostgreSQL takes the rows as one binary array per column (see notifier.storage.outbox).
_PG_INSERT = (
    'INSERT INTO inbox ("user", msg_id, title, link, app, topic, severity, "timestamp", '
    "created_at, rules, why, read) "
    "SELECT u, m, t, l, a, tp, s, ts, %s, r::json, w::json, false FROM unnest(%b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::float8[], "
    "%b::text[], %b::text[]) AS x(u, m, t, l, a, tp, s, ts, r, w)")

# SQLite: plain driver statements, one row per execution (several times cheaper than
# building each row's parameters through SQLAlchemy).
_SQLITE_INSERT = (
    'INSERT INTO inbox ("user", msg_id, title, link, app, topic, severity, "timestamp", '
    "created_at, rules, why, read) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)")


def write_rows(conn: Connection, rows: list[dict[str, Any]], now: float) -> int:
    """Insert inbox rows (made by :func:`inbox_row`), unread, in the caller's transaction.

    Rows repeating a ``(user, msg_id)`` of the same call are left out. Returns
    how many were written. A plain multi-row insert: no ``RETURNING``, no conflict
    clause, so it adds as little as possible to the transaction that records a batch;
    then each rule's sends of the day are counted (:mod:`.rulecounts`).
    """
    seen: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        key = (row["user"], row["msg_id"])
        if key in seen:
            continue
        seen.add(key)
        out.append({**row, "created_at": now, "read": False})
    if conn.dialect.name == "postgresql":
        if out:
            conn.exec_driver_sql(_PG_INSERT, (now, *pg_columns(
                [(r["user"], r["msg_id"], r["title"], r["link"], r["app"], r["topic"],
                  r["severity"], r["timestamp"], json_dumps(r["rules"]),
                  None if r.get("why") is None else json_dumps(r["why"])) for r in out],
                "tttttttftt")))
    elif out:
        conn.exec_driver_sql(_SQLITE_INSERT, [
            (r["user"], r["msg_id"], r["title"], r["link"], r["app"], r["topic"],
             r["severity"], r["timestamp"], now, json_dumps(r["rules"]),
             None if r.get("why") is None else json_dumps(r["why"])) for r in out])
    count_sends(conn, out, now)
    return len(out)


def encode_cursor(before_id: int) -> str:
    """The opaque cursor of the page that starts after row ``before_id`` (newest first)."""
    raw = f"{_CURSOR_PREFIX}{before_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row id a cursor from :func:`encode_cursor` stands for; InputError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError) as exc:
        raise InputError("cursor: not a cursor this service gave out") from exc
    if not raw.startswith(_CURSOR_PREFIX) or not raw[len(_CURSOR_PREFIX):].isdigit():
        raise InputError("cursor: not a cursor this service gave out")
    return int(raw[len(_CURSOR_PREFIX):])


class Inbox:
    """Inbox operations on a :class:`~notifier.storage.Store`'s database."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    # -- reading ---------------------------------------------------------------

    def page(self, user: str, cursor: str | None = None, limit: int = 50,
             unread: bool = False) -> Page:
        """A page of ``user``'s inbox, newest first, after ``cursor`` (None: the newest).

        ``limit`` is 1 to :data:`MAX_LIMIT`; ``unread`` keeps only unread rows.
        :class:`InputError` for a bad cursor or limit.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise InputError(f"limit: must be 1 to {MAX_LIMIT}, not {limit}")
        query = select(inbox).where(inbox.c.user == user)
        if cursor:
            query = query.where(inbox.c.id < decode_cursor(cursor))
        if unread:
            query = query.where(inbox.c.read.is_(False))
        query = query.order_by(inbox.c.id.desc()).limit(limit + 1)
        with self.store._transaction(f"read the inbox of {user!r}", write=False) as conn:
            rows = conn.execute(query).all()
        items = [_item(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].id) if more else None)

    def get(self, user: str, item_id: int) -> InboxItem | None:
        """Row ``item_id`` if it is ``user``'s, else None (another's is as good as none)."""
        with self.store._transaction(f"read the inbox of {user!r}", write=False) as conn:
            row = conn.execute(select(inbox).where(inbox.c.id == item_id,
                                                   inbox.c.user == user)).first()
        return None if row is None else _item(row)

    def counts(self, user: str, up_to: int | None = None) -> Counts:
        """How many rows ``user`` has, and how many are unread (up to id ``up_to``, if given)."""
        unread = func.count().filter(inbox.c.read.is_(False))
        query = select(func.count(), unread).where(inbox.c.user == user)
        if up_to is not None:
            query = query.where(inbox.c.id <= up_to)
        with self.store._transaction(f"count the inbox of {user!r}", write=False) as conn:
            total, unread_n = conn.execute(query).one()
        return Counts(total or 0, unread_n or 0)

    def last_id(self, user: str) -> int:
        """The id of ``user``'s newest row, 0 when there is none."""
        with self.store._transaction(f"read the inbox of {user!r}", write=False) as conn:
            return conn.execute(select(func.max(inbox.c.id))
                                .where(inbox.c.user == user)).scalar() or 0

    def newest_id(self) -> int:
        """The id of the newest row of anyone, 0 when there is none."""
        with self.store._transaction("read the inbox", write=False) as conn:
            return conn.execute(select(func.max(inbox.c.id))).scalar() or 0

    def after(self, after_id: int, users: Iterable[str] | None = None, limit: int = 1000,
              newest_first: bool = False) -> list[InboxItem]:
        """Rows with an id above ``after_id`` (of ``users`` only, if given), in id order
        (or newest first), at most ``limit``: what the live streams send."""
        query = select(inbox).where(inbox.c.id > after_id)
        if users is not None:
            query = query.where(inbox.c.user.in_(sorted(set(users))))
        order = inbox.c.id.desc() if newest_first else inbox.c.id
        with self.store._transaction("read new inbox rows", write=False) as conn:
            rows = conn.execute(query.order_by(order).limit(limit)).all()
        return [_item(r) for r in rows]

    # -- read and unread ---------------------------------------------------------

    def mark(self, user: str, ids: Iterable[int], read: bool = True) -> list[int]:
        """Mark ``user``'s rows ``ids`` read (or unread).

        All or nothing: when any id is not one of ``user``'s rows, nothing
        changes and those ids are returned (sorted); else an empty list.
        """
        wanted = sorted(set(ids))
        verb = "read" if read else "unread"
        with self.store._transaction(f"mark notifications of {user!r} {verb}") as conn:
            found: set[int] = set()
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                found.update(conn.scalars(select(inbox.c.id).where(
                    inbox.c.user == user, inbox.c.id.in_(chunk))))
            missing = [i for i in wanted if i not in found]
            if missing:
                return missing
            for start in range(0, len(wanted), _CHUNK):
                conn.execute(update(inbox).where(
                    inbox.c.user == user, inbox.c.id.in_(wanted[start:start + _CHUNK]),
                    inbox.c.read.is_(not read)).values(read=read))
        return []

    def mark_all_read(self, user: str, up_to: int) -> int:
        """Mark every row of ``user`` up to id ``up_to`` read; return how many changed.

        Rows that arrived after the one the user saw last stay unread.
        """
        with self.store._transaction(f"mark notifications of {user!r} read") as conn:
            return conn.execute(update(inbox).where(
                inbox.c.user == user, inbox.c.id <= up_to, inbox.c.read.is_(False))
                .values(read=True)).rowcount

    # -- housekeeping --------------------------------------------------------------

    def prune(self, older_than: float) -> int:
        """Delete rows stored more than ``older_than`` seconds ago; return how many.

        Rows are written in id order as time goes, so the first row young
        enough to keep is found by bisecting ids (a primary-key look-up each),
        and everything before it goes: no index on the time to pay for at
        every insert, and no scan of the table.
        """
        cutoff = self.clock() - older_than
        with self.store._transaction("prune the inbox") as conn:
            low, high = conn.execute(select(func.min(inbox.c.id), func.max(inbox.c.id))).one()
            prune_sends(conn, cutoff)
            if low is None:
                return 0
            keep = self._first_kept(conn, low, high, cutoff)
            if keep == low:
                return 0
            return conn.execute(delete(inbox).where(inbox.c.id < keep)).rowcount

    @staticmethod
    def _first_kept(conn: Connection, low: int, high: int, cutoff: float) -> int:
        """The lowest id from which rows were stored at or after ``cutoff`` (high + 1: none)."""
        def stored_at(at_least: int) -> tuple[int, float] | None:
            row = conn.execute(select(inbox.c.id, inbox.c.created_at)
                               .where(inbox.c.id >= at_least)
                               .order_by(inbox.c.id).limit(1)).first()
            return None if row is None else (row.id, row.created_at)

        first, last = low, high + 1
        while first < last:
            middle = (first + last) // 2
            found = stored_at(middle)
            if found is None or found[1] >= cutoff:
                last = middle
            else:
                first = found[0] + 1
        return first


def _item(r: Any) -> InboxItem:
    return InboxItem(id=r.id, user=r.user, msg_id=r.msg_id, title=r.title, link=r.link,
                     app=r.app, topic=r.topic, severity=r.severity, timestamp=r.timestamp,
                     created_at=r.created_at, rules=tuple(r.rules or ()),
                     why=dict(r.why) if isinstance(r.why, dict) else None, read=bool(r.read))


__all__ = ["MAX_LIMIT", "Counts", "Inbox", "InboxItem", "Page", "decode_cursor",
           "encode_cursor", "inbox_row", "write_rows"]
