"""``notifier db``: the database schema."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..config import Config
from ..storage import Store
from ..storage.engine import redact, sqlite_path
from ..storage.migrate import head_revision
from .common import NotifierGroup, config_option


@click.group(cls=NotifierGroup)
def db() -> None:
    """Create and migrate the database.

    The database is the config's top-level database_url (a SQLAlchemy URL,
    e.g. postgresql+psycopg://user@host/dbname); by default a SQLite file,
    $XDG_DATA_HOME/notifier/notifier.db. Commands that use the database create
    and migrate it on first use, so 'db upgrade' is only needed to migrate
    ahead of time, for example after installing a new version.
    """


@db.command()
@config_option
def upgrade(config: Config) -> None:
    """Create the database if needed and migrate it to the newest schema."""
    url = config.resolved_database_url()
    with Store(url) as store:
        click.echo(f"{redact(url)}: schema at revision {store.revision()} (newest)")


@db.command()
@config_option
def current(config: Config) -> None:
    """Show the schema revision; exit 1 if the database is missing or behind.

    Never creates or changes anything.
    """
    url = config.resolved_database_url()
    try:
        path = sqlite_path(make_url(url))
    except (ArgumentError, ValueError):
        path = None  # Store() reports the bad URL
    if path is not None and not path.exists():
        raise click.ClickException(f"{redact(url)}: no database yet; 'notifier db upgrade' "
                                   f"creates it")
    with Store(url, create=False) as store:
        revision = store.revision()
    head = head_revision()
    if revision == head:
        click.echo(f"{redact(url)}: schema at revision {revision} (newest)")
        return
    now = "empty (no schema)" if revision is None else f"at revision {revision}"
    raise click.ClickException(f"{redact(url)}: schema {now}; the newest is {head}; "
                               f"run 'notifier db upgrade'")
