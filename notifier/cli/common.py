"""What every command shares: ``--config``, error reporting, logging."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import click

from ..config import ENV_VAR, Config, load_config
from ..errors import NotifierError
from ..logs import log_to_stderr

CONFIG_HELP = ("Config file (TOML). Default: $NOTIFIER_CONFIG, else /etc/notifier/notifier.toml "
               "overlaid by ~/.config/notifier/notifier.toml, else built-in defaults.")
#: where a group's ``--config`` waits for the command below it (``Context.meta`` is shared)
_CONFIG_PATH = "notifier.config_path"


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
        # Every group takes --config too, and hands it down to the command that runs.
        if not any(param.name == "config" for param in self.params):
            self.params.append(click.Option(
                ["--config"], metavar="PATH", expose_value=False, callback=_remember_config,
                help=CONFIG_HELP + " Applies to every command below; the innermost wins."))

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


def _remember_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_CONFIG_PATH] = value


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> Config:
    path = value if value is not None else ctx.meta.get(_CONFIG_PATH)
    if path is not None:
        try:
            return load_config(path)
        except NotifierError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    try:
        return load_config()
    except NotifierError as exc:
        # Not a --config: say where the file came from instead.
        source = f"${ENV_VAR}: " if os.environ.get(ENV_VAR) else ""
        raise click.ClickException(f"{source}{exc}") from exc


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config PATH``; the command receives ``config`` (a loaded :class:`Config`).

    Without it here, the ``--config`` given to the nearest group above
    applies (``notifier users --config X list``), else the default files.
    """
    return click.option("--config", "config", metavar="PATH", callback=_load_config,
                        help=CONFIG_HELP)(func)


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr; ``-v`` for debug."""
    log_to_stderr(logging.DEBUG if verbose else logging.INFO)
