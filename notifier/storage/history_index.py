"""Filling the history's index, and the rule editor's look-ups that read it.

:class:`HistoryIndex` indexes stored messages that have no index rows
(those stored before migration 0008, or by a writer without a describer)
and, on request, every message again (after a change to ``[meta]``
mappings, say). Its look-ups list the applications the history has seen and
search packages, users and groups by prefix: from the history's vocabulary
(:mod:`.terms`) and from what the database knows otherwise (package owners,
users).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ..errors import InputError
from . import terms
from .schema import messages, owners, users
from .store import Store

#: messages described and written per transaction while indexing
BATCH = 2000


class HistoryIndex:
    """The index of ``store``'s message history."""

    def __init__(self, store: Store):
        self.store = store

    def unindexed(self) -> int:
        """How many stored messages have no index rows."""
        with self.store._transaction("count unindexed messages", write=False) as conn:
            return terms.count_unindexed(conn)

    def reindex(self, describe: Callable[[dict[str, Any]], dict[str, Any]], *,
                everything: bool = False,
                progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """Describe and index the messages without index rows (``everything``: all of them).

        ``progress(n)`` is called after each batch of ``n`` messages. A
        message that cannot be described stays unindexed. Returns
        ``(indexed, not describable)``.
        """
        done = failed = 0
        after = 0
        while True:
            with self.store._transaction("read messages to index", write=False) as conn:
                if everything:
                    m = messages.c
                    rows = conn.execute(select(m.id, m.timestamp, m.envelope)
                                        .where(m.id > after).order_by(m.id)
                                        .limit(BATCH)).all()
                else:
                    rows = terms.unindexed(conn, after, BATCH)
            if not rows:
                break
            described = []
            for row in rows:
                try:
                    described.append((row.id, row.timestamp, describe(row.envelope)))
                except InputError:
                    failed += 1
            with self.store._transaction("index messages") as conn:
                if everything:
                    terms.forget(conn, [row.id for row in rows])
                terms.write_index(conn, self.store.dialect, terms.index_rows(described))
            done += len(described)
            after = rows[-1].id
            if progress is not None:
                progress(len(rows))
        with self.store._transaction("finish indexing") as conn:
            if terms.unindexed_upto(conn) is not None and not terms.unindexed(conn, 0, 1):
                terms.set_unindexed_upto(conn, None)
        return done, failed

    # -- look-ups -------------------------------------------------------------------

    def applications(self) -> list[str]:
        """The applications of the stored messages (lower case), sorted."""
        with self.store._transaction("list applications", write=False) as conn:
            return terms.known_values(conn, "app")

    def packages(self, prefix: str = "", limit: int = 20) -> list[str]:
        """Packages starting with ``prefix``: in the history or with owners."""
        with self.store._transaction("search packages", write=False) as conn:
            found = set(terms.known_values(conn, "package", prefix, limit))
            found.update(_prefixed(conn, owners.c.package, prefix, limit))
        return sorted(found)[:limit]

    def users(self, prefix: str = "", limit: int = 20) -> list[str]:
        """User names starting with ``prefix``: in the history, owners or notifier's users."""
        with self.store._transaction("search users", write=False) as conn:
            found = set(terms.known_values(conn, "user", prefix, limit))
            found.update(terms.known_values(conn, "agent", prefix, limit))
            found.update(_prefixed(conn, users.c.name, prefix, limit))
            found.update(_prefixed(conn, owners.c.name, prefix, limit,
                                   owners.c.kind == "user"))
        return sorted(found)[:limit]

    def groups(self, prefix: str = "", limit: int = 20) -> list[str]:
        """Group names starting with ``prefix``: in the history or owning packages."""
        with self.store._transaction("search groups", write=False) as conn:
            found = set(terms.known_values(conn, "group", prefix, limit))
            found.update(_prefixed(conn, owners.c.name, prefix, limit,
                                   owners.c.kind == "group"))
        return sorted(found)[:limit]


def _prefixed(conn: Any, column: Any, prefix: str, limit: int, *where: Any) -> list[str]:
    """Distinct values of ``column`` starting with ``prefix`` (exactly, case-sensitively)."""
    stmt = select(column).where(*where).distinct()
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(column.like(escaped + "%", escape="\\"))
    return [v for v in conn.scalars(stmt.order_by(column).limit(limit)) if v.startswith(prefix)]
