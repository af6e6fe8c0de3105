"""``notifier``: the service and its administration commands."""

from __future__ import annotations

import click

from .. import __version__
from .common import NotifierGroup

#: subcommand -> "module:attribute", imported when the subcommand runs
SUBCOMMANDS = {
    "relay": "notifier.cli.relay:relay",
    "describe": "notifier.cli.describe:describe",
    "db": "notifier.cli.db:db",
    "users": "notifier.cli.users:users",
    "owners": "notifier.cli.owners:owners",
    "rules": "notifier.cli.rules:rules",
    "match": "notifier.cli.match:match",
    "history": "notifier.cli.history:history",
    "serve": "notifier.cli.serve:serve",
    "outbox": "notifier.cli.outbox:outbox",
    "tokens": "notifier.cli.tokens:tokens",
    "firehose": "notifier.cli.firehose:firehose",
}


@click.group(cls=NotifierGroup, lazy=SUBCOMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="notifier")
def cli() -> None:
    """notifier: per-user notifications from a fedmsg-style message bus.

    Every command and group takes --config PATH, before or after the names
    of the commands below it (notifier --config X users list, notifier users
    list --config X); see 'notifier COMMAND --help'.
    """


def main() -> None:
    """Entry point of the ``notifier`` console script."""
    cli.main(prog_name="notifier")
