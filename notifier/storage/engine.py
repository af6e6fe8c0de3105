"""Opening a database: SQLAlchemy engines for SQLite and PostgreSQL.

SQLite connections are set up for several processes sharing one file: WAL
journal (readers never block the writer), foreign keys on, a busy timeout
instead of an immediate "database is locked", and case-sensitive ``LIKE`` so
that topic globs behave the same as on PostgreSQL. Transactions are started
by us rather than by the sqlite3 module, so DDL is transactional and a
transaction that will write takes the write lock up front (``BEGIN
IMMEDIATE``) rather than failing half-way when another process wrote first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ..errors import StorageError

#: dialects the schema and the queries are written for
SUPPORTED = ("sqlite", "postgresql")
#: execution option that makes a SQLite transaction take the write lock at BEGIN
WRITE_OPTION = "notifier_write"
BUSY_TIMEOUT_MS = 30_000
#: connections a process keeps open to a database file or server, and how many more it
#: may open for a while
POOL_SIZE, POOL_OVERFLOW = 12, 20

_LONG_DIGITS = re.compile(r"\d{20}")
_LONG_DIGITS_B = re.compile(rb"\d{20}")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", url)


def json_dumps(obj: Any) -> str:
    """Encode a JSON column value: orjson for speed, the standard encoder for what it refuses."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # integers beyond 64 bits, for one
        return json.dumps(obj, ensure_ascii=False)


def json_loads(text: str | bytes) -> Any:
    """Decode JSON exactly: orjson for speed, the standard parser where orjson is lossy.

    orjson turns integers beyond 64 bits into floats and refuses some valid
    documents, so text with a run of 20 digits, or that orjson rejects,
    goes to :func:`json.loads`, whose errors name the line and column.
    """
    pattern = _LONG_DIGITS_B if isinstance(text, bytes) else _LONG_DIGITS
    if pattern.search(text) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def insert_ignoring(dialect: str, table: Table, keys: list[str]) -> Any:
    """``INSERT INTO table ... ON CONFLICT (keys) DO NOTHING`` for ``dialect``.

    Both supported databases have the clause; a row whose ``keys`` are taken
    already is skipped without error.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=keys)


def pg_columns(rows: list[tuple[Any, ...]], kinds: str) -> tuple[list[Any], ...]:
    """``rows`` turned into one list per column, for ``unnest`` of PostgreSQL arrays.

    ``kinds`` has a letter per column: ``i`` integer, ``f`` float, ``t`` text
    (None stays None). Each list holds one Python type, as the driver's binary
    array format needs (a timestamp may come as an int).
    """
    convert = {"i": int, "f": float, "t": str}
    columns = []
    for index, kind in enumerate(kinds):
        to = convert[kind]
        columns.append([None if row[index] is None else to(row[index]) for row in rows])
    return tuple(columns)


def is_memory(url: URL) -> bool:
    """Whether ``url`` names a private in-memory SQLite database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None (not SQLite, or in memory)."""
    if url.get_backend_name() != "sqlite" or is_memory(url):
        return None
    database = url.database or ""
    if database.startswith("file:"):
        database = database[5:].partition("?")[0]
    return Path(database)


def open_engine(url: str, *, create_dirs: bool) -> Engine:
    """Create the engine for ``url``; with ``create_dirs``, make a SQLite file's directory.

    Raises :class:`StorageError` for a malformed URL, an unsupported database
    or a missing driver, naming the URL (without its password).
    """
    shown = redact(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StorageError(f"database_url {shown!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StorageError(f"database_url {shown!r}: {backend} is not supported; "
                           f"use {' or '.join(SUPPORTED)}")
    kwargs: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}
    if is_memory(parsed):
        # One connection shared by every thread, or each would see its own empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    path = sqlite_path(parsed)
    if path is not None and create_dirs:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{shown}: cannot create directory {path.parent}: "
                               f"{exc.strerror}") from exc
    if backend == "postgresql":
        kwargs["pool_pre_ping"] = True
    if not is_memory(parsed):
        # Kept open, however briefly each is used: the parts that hold one for good (a
        # leader's lock) and the threads that take one per transaction (ingest, heartbeat,
        # web, delivery) together pass the default 5, and a connection closed on its return
        # is one opened again soon, with its plans and caches cold.
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (install notifier[postgres])" if backend == "postgresql" else ""
        raise StorageError(f"{shown}: no database driver: {exc}{hint}") from exc
    except ArgumentError as exc:
        raise StorageError(f"{shown}: {exc}") from exc
    if backend == "sqlite":
        _setup_sqlite(engine, wal=path is not None)
    return engine


def _setup_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
                # Safe with WAL: a power cut loses at most the last commits, never integrity.
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA case_sensitive_like = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
