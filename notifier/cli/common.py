"""What every command shares: ``--config``, error reporting, logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from ..config import Config, load_config
from ..errors import NotifierError
from ..logs import log_to_stderr


class NotifierCommand(click.Command):
    """A click command that reports :class:`NotifierError` as a one-line error, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NotifierError as exc:
            raise click.ClickException(str(exc)) from exc


class NotifierGroup(click.Group):
    """A click group whose subcommands are :class:`NotifierCommand` and load lazily.

    ``lazy`` maps a subcommand name to ``"module:attribute"``, imported only
    when that subcommand runs, so ``notifier-logger`` never pays for SQLAlchemy.
    """

    command_class = NotifierCommand

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module, _, attr = self.lazy[name].partition(":")
            cmd = getattr(__import__(module, fromlist=[attr]), attr)
            self.add_command(cmd, name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NotifierError as exc:
            raise click.ClickException(str(exc)) from exc


NotifierGroup.group_class = NotifierGroup


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config PATH``; the command receives ``config`` (a loaded :class:`Config`)."""

    def load(ctx: click.Context, param: click.Parameter, value: str | None) -> Config:
        try:
            return load_config(value)
        except NotifierError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc

    return click.option(
        "--config", "config", metavar="PATH", callback=load,
        help="Config file (TOML). Default: $NOTIFIER_CONFIG, else /etc/notifier/notifier.toml "
             "overlaid by ~/.config/notifier/notifier.toml, else built-in defaults.")(func)


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr; ``-v`` for debug."""
    log_to_stderr(logging.DEBUG if verbose else logging.INFO)
