"""The tables, as SQLAlchemy Core metadata.

This describes the schema at the newest migration; the migrations under
``migrations/versions`` are what actually create it, and a new table or
column goes into both. Every table has a surrogate integer key or a natural
composite one, so that tables added later (the delivery outbox) can refer
to users and messages by a stable id.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: names for constraints, so later migrations (SQLite batch mode) can address them
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY
BigId = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("emails", JSON, nullable=False),
    Column("ircnicks", JSON, nullable=False),
    Column("groups", JSON, nullable=False),
    # Per-user delivery settings: a JSON object, or NULL for the defaults.
    Column("delivery", JSON(none_as_null=True), nullable=True),
    # Secret part of the user's feed URL, set once when the user is created.
    Column("feed_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("name"),
    UniqueConstraint("feed_token"),
)

owners = Table(
    "owners", metadata,
    Column("package", String(255), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("name", String(255), nullable=False),
    PrimaryKeyConstraint("package", "kind", "name"),
    CheckConstraint("kind IN ('user', 'group')", name="kind"),
    Index(None, "kind", "name"),
)

rules = Table(
    "rules", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False),
    # The rule as validated by notifier.rules, stored whole.
    Column("document", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("username", "name"),
)

messages = Table(
    "messages", metadata,
    Column("id", BigId, primary_key=True),
    Column("msg_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    # Seconds since the epoch: the message's own time, else when it was stored.
    Column("timestamp", Float, nullable=False),
    # The envelope exactly as received or imported.
    Column("envelope", JSON, nullable=False),
    UniqueConstraint("msg_id"),
    Index(None, "topic"),
    Index(None, "timestamp"),
)

profile_cache = Table(
    "profile_cache", metadata,
    Column("name", String(255), nullable=False, primary_key=True),
    # The profile as notifier.users uses it; NULL when the directory has no such user.
    Column("profile", JSON(none_as_null=True), nullable=True),
    Column("fetched_at", Float, nullable=False),
)
