"""Running the Alembic migrations that ship inside this package.

There is no ``alembic.ini``: the configuration is built here, pointing at
``notifier/storage/migrations``, so migrations work the same from a source
checkout and from an installed wheel.

A new migration, for developers::

    python -m notifier.storage.migrate revision --rev-id 0002 -m "delivery outbox"

then edit the file it writes under ``migrations/versions`` and add the same
tables to :mod:`notifier.storage.schema`.

Revisions are numbered in one line (``0001``, ``0002``, ...), each file named
after its number, so the newest one shipped is read off the file names, and a
database already at it is recognised by one query on ``alembic_version``.
Alembic itself, which reads every migration script and takes a good part of
a second to import, is only loaded when there is something to migrate (or
the database is not one of ours yet).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: any constant will do: it only has to be the same in every process
_PG_LOCK_KEY = 0x6E6F746966696572  # b"notifier"


_NUMBERED = re.compile(r"^(\d{4})_\w+\.py$")


class MigrationFailed(Exception):
    """Alembic could not migrate; the store names the database and raises StorageError."""


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic configuration for our migrations, using ``connection`` if given."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision shipped with this version of notifier (Alembic's answer)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def shipped_head() -> str | None:
    """The newest revision shipped, from the numbered file names alone."""
    numbers = [m.group(1) for f in (MIGRATIONS / "versions").iterdir()
               if (m := _NUMBERED.match(f.name))]
    return max(numbers, default=None)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = [r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))]
    if len(versions) == 1:
        return versions[0]
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()  # it explains


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` (inside its transaction) to ``revision``.

    On PostgreSQL a transaction-level advisory lock makes concurrent
    upgrades wait for each other; on SQLite the caller's ``BEGIN
    IMMEDIATE`` does the same.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    if revision == "head" and current_revision(connection) == shipped_head():
        return
    from alembic import command
    from alembic.util import CommandError

    try:
        command.upgrade(alembic_config(connection), revision)
    except CommandError as exc:
        raise MigrationFailed(str(exc)) from exc


def main(argv: list[str] | None = None) -> None:
    """``python -m notifier.storage.migrate revision``: start a new migration file."""
    parser = argparse.ArgumentParser(prog="python -m notifier.storage.migrate")
    sub = parser.add_subparsers(dest="action", required=True)
    rev = sub.add_parser("revision", help="write a new, empty migration file")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--rev-id", required=True, help="the next number, e.g. 0002")
    args = parser.parse_args(argv)
    from alembic import command

    command.revision(alembic_config(), message=args.message, rev_id=args.rev_id)


if __name__ == "__main__":
    main()
