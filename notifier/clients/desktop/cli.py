"""``notifier-desktop``: the command line (run, setup, install-autostart)."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import click

from . import config as settings

HELP = """\
Desktop notifications from notifier, with a tray icon.

Run without a command, it starts the app in your graphical session: it shows
your notifications through the desktop's notification daemon, and puts an
icon with a menu in the tray when the desktop has one.

Where notifications come from is set in ~/.config/notifier/desktop.toml
(write it with 'notifier-desktop setup'):

\b
  mode = "server"  (the default) a notifier service's live stream: its
                   address, your user name and a read token (or your feed
                   token). After sleep, network loss or a restart it resumes
                   where it stopped: nothing missed, nothing twice.
  mode = "bus"     the message bus itself, as fedmsg-notify did: the app
                   subscribes to [bus] endpoints and applies filters written
                   in the rules' vocabulary on this machine.

Scripts and shell extensions drive a running app over D-Bus:
org.fedoraproject.notifier.Desktop (Enable, Disable, Status, ...).
"""

log = logging.getLogger("notifier-desktop")


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="notifier-desktop: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore"):  # a line for each request: not what -v is for
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(invoke_without_command=True, help=HELP)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="The config file (default: ~/.config/notifier/desktop.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    ctx.obj = config_path
    _logging(verbose)
    if ctx.invoked_subcommand is None:
        ctx.invoke(run)


@main.command(help="Start the app (what running without a command does).")
@click.pass_obj
def run(config_path: Path | None) -> None:
    from .runner import run_app  # dbus-python is needed only from here

    try:
        config = settings.load(config_path)
        if config.mode == "bus":
            from .busmode import matcher_for

            matcher_for(config.bus, config.path)  # the filters, checked before anything runs
    except settings.ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(run_app(config))


@main.command(help="Write the config file for a notifier server, after checking the token.")
@click.option("--url", prompt="The notifier service's address (https://...)")
@click.option("--user", prompt="Your user name")
@click.option("--token", prompt="A read token (or your feed token)", hide_input=True)
@click.option("--api-token", default="", help="A write token, for 'Mute rule' and "
              "'Mark all read' (optional).")
@click.option("--no-check", is_flag=True, help="Do not try the token on the server.")
@click.pass_obj
def setup(config_path: Path | None, url: str, user: str, token: str, api_token: str,
          no_check: bool) -> None:
    path = config_path or settings.default_path()
    try:
        settings.parse({"server": {"url": url.rstrip("/"), "user": user, "token": token,
                                   "api_token": api_token}}, str(path))
    except settings.ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not no_check:
        from .check import check_stream

        problem = check_stream(url.rstrip("/"), user, token)
        if problem:
            raise click.ClickException(problem)
    settings.write(path, url, user, token, api_token)
    click.echo(f"wrote {path}; start the app with 'notifier-desktop'")


@main.command("install-autostart",
              help="Start the app with the session: an XDG autostart entry (default), or a "
                   "systemd user unit. Installs the icon in the hicolor theme too.")
@click.option("--systemd", is_flag=True, help="Write a systemd user unit instead.")
@click.pass_obj
def install_autostart(config_path: Path | None, systemd: bool) -> None:
    from .install import install

    program = shutil.which("notifier-desktop") or str(Path(sys.argv[0]).resolve())
    for path in install(program, config_path, systemd=systemd):
        click.echo(f"wrote {path}")
    if systemd:
        click.echo("enable it with: systemctl --user enable --now notifier-desktop.service")
