"""The delivery tables, on the project's shared metadata (migrations 0003 to 0005)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ..storage.schema import BigId, metadata

outbox = Table(
    "outbox", metadata,
    Column("id", BigId, primary_key=True),
    Column("user", String(255), nullable=False),
    Column("msg_id", Text, nullable=False),
    Column("destination", String(32), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # When the next attempt may start (seconds since the epoch).
    Column("next_attempt", Float, nullable=False),
    # A worker that took the row owns it until then; after a crash it expires.
    Column("claimed_until", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    # notifier.backends.base.Notification.to_dict(): rendered, ready to send.
    Column("notification", JSON, nullable=False),
    UniqueConstraint("user", "msg_id", "destination"),
    Index(None, "destination", "state", "next_attempt"),
    # Digests, the depth gauge and the lag gauge look rows up by state alone.
    Index(None, "state", "created_at"),
    # A user's rows in id order, for the two readers that need them, each indexing
    # only its own rows: an index on every row keyed by user costs each insert a
    # write to a page of its own (measured: 3.6 times the insert's cost).
    Index("ix_outbox_desktop_user_id", "user", "id",
          sqlite_where=text("destination = 'desktop'"),
          postgresql_where=text("destination = 'desktop'")),  # the live stream
    Index("ix_outbox_held_user_destination_id", "user", "destination", "id",
          sqlite_where=text("state = 'held'"),
          postgresql_where=text("state = 'held'")),  # digests
)

digest_state = Table(
    "digest_state", metadata,
    Column("user", String(255), primary_key=True),
    Column("destination", String(32), primary_key=True),
    # When the last digest went out, and for which window of the schedule.
    Column("last_sent", Float, nullable=False),
    Column("last_window", Integer, nullable=False),
)

#: Every change to rules, owners and users, in order, so a running service can
#: apply other processes' changes to its matcher incrementally.
changes = Table(
    "changes", metadata,
    Column("seq", BigId, primary_key=True),
    Column("kind", String(8), nullable=False),  # rule, owner, user
    Column("op", String(8), nullable=False),    # upsert, delete (rule, user); add, remove (owner)
    Column("key1", String(255), nullable=False),  # user name, or the package
    Column("key2", String(255), nullable=True),   # rule name, or the owner kind
    Column("key3", String(255), nullable=True),   # the owner name
    Column("at", Float, nullable=False),
)

settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
