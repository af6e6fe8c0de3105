"""The statements that write a batch into the history and the outbox, for each database.

PostgreSQL takes a batch as one array per column, unnested into rows: one
short statement, the same text every time (prepared once by the driver),
whatever the batch's size, in place of a parameter per value. SQLite takes
one multi-row statement per chunk, written for the driver: building each
row's parameters through SQLAlchemy cost more than SQLite's own work.
"""

from __future__ import annotations

from typing import Any

from .engine import json_dumps

PG_MESSAGES = (
    'INSERT INTO messages (msg_id, topic, "timestamp", envelope) '
    "SELECT m, t, s, e::json FROM unnest(%b::text[], %b::text[], %b::float8[], %b::text[]) "
    "AS r(m, t, s, e) ON CONFLICT (msg_id) DO NOTHING RETURNING id, msg_id")
PG_OUTBOX = (
    'INSERT INTO outbox ("user", msg_id, destination, state, attempts, next_attempt, '
    "claimed_until, claimed_by, created_at, sent_at, last_error, notification) "
    "SELECT u, m, d, s, 0, %s, c, b, %s, x, e, n::json FROM unnest(%b::text[], %b::text[], "
    "%b::text[], %b::text[], %b::float8[], %b::text[], %b::float8[], %b::text[], %b::text[]) "
    "AS r(u, m, d, s, c, b, x, e, n) "
    'ON CONFLICT ("user", msg_id, destination) DO NOTHING '
    'RETURNING id, "user", msg_id, destination')

SQLITE_OUTBOX = (
    'INSERT INTO outbox ("user", msg_id, destination, state, attempts, next_attempt, '
    "claimed_until, claimed_by, created_at, sent_at, last_error, notification) VALUES {} "
    'ON CONFLICT ("user", msg_id, destination) DO NOTHING '
    'RETURNING id, "user", msg_id, destination')
SQLITE_OUTBOX_ROW = "(?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"


def insert_messages_pg(conn: Any, chunk: list[dict[str, Any]]) -> list[Any]:
    """Insert history rows on PostgreSQL; the new ones' ``(id, msg_id)``."""
    return conn.exec_driver_sql(PG_MESSAGES, (
        [h["msg_id"] for h in chunk], [h["topic"] for h in chunk],
        [float(h["timestamp"]) for h in chunk],
        [json_dumps(h["envelope"]) for h in chunk])).all()


def insert_outbox_pg(conn: Any, chunk: list[dict[str, Any]]) -> list[Any]:
    """Insert outbox rows made in one batch (one ``now``) on PostgreSQL; the new ones'
    ``(id, user, msg_id, destination)``."""
    first = chunk[0]
    return conn.exec_driver_sql(PG_OUTBOX, (
        first["next_attempt"], first["created_at"],
        [r["user"] for r in chunk], [r["msg_id"] for r in chunk],
        [r["destination"] for r in chunk], [r["state"] for r in chunk],
        [r["claimed_until"] for r in chunk], [r["claimed_by"] for r in chunk],
        [r["sent_at"] for r in chunk],
        [r["last_error"] for r in chunk],
        [json_dumps(r["notification"]) for r in chunk])).all()


def insert_outbox_sqlite(conn: Any, chunk: list[dict[str, Any]]) -> list[Any]:
    """Insert outbox rows on SQLite, one statement for the chunk; the new ones'
    ``(id, user, msg_id, destination)``.

    Written for the driver, not through SQLAlchemy, whose building of each
    row's parameters cost more than SQLite's work on them. A chunk of
    :data:`~.outboxrows.CHUNK` rows stays within SQLite's 32,766 parameters a statement.
    """
    values = ", ".join([SQLITE_OUTBOX_ROW] * len(chunk))
    params = tuple(value for r in chunk for value in (
        r["user"], r["msg_id"], r["destination"], r["state"], r["next_attempt"],
        r["claimed_until"], r["claimed_by"], r["created_at"], r["sent_at"], r["last_error"],
        json_dumps(r["notification"])))
    return conn.exec_driver_sql(SQLITE_OUTBOX.format(values), params).all()
