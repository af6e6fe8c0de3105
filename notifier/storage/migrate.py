"""Running the Alembic migrations that ship inside this package.

There is no ``alembic.ini``: the configuration is built here, pointing at
``notifier/storage/migrations``, so migrations work the same from a source
checkout and from an installed wheel.

A new migration, for developers::

    python -m notifier.storage.migrate revision --rev-id 0002 -m "delivery outbox"

then edit the file it writes under ``migrations/versions`` and add the same
tables to :mod:`notifier.storage.schema`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: any constant will do: it only has to be the same in every process
_PG_LOCK_KEY = 0x6E6F746966696572  # b"notifier"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic configuration for our migrations, using ``connection`` if given."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision shipped with this version of notifier."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` (inside its transaction) to ``revision``.

    On PostgreSQL a transaction-level advisory lock makes concurrent
    upgrades wait for each other; on SQLite the caller's ``BEGIN
    IMMEDIATE`` does the same.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    if current_revision(connection) == head_revision() and revision == "head":
        return
    command.upgrade(alembic_config(connection), revision)


def main(argv: list[str] | None = None) -> None:
    """``python -m notifier.storage.migrate revision``: start a new migration file."""
    parser = argparse.ArgumentParser(prog="python -m notifier.storage.migrate")
    sub = parser.add_subparsers(dest="action", required=True)
    rev = sub.add_parser("revision", help="write a new, empty migration file")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--rev-id", required=True, help="the next number, e.g. 0002")
    args = parser.parse_args(argv)
    command.revision(alembic_config(), message=args.message, rev_id=args.rev_id)


if __name__ == "__main__":
    main()
