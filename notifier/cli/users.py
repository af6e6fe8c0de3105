"""``notifier users``: the people notifications go to."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

import click

from ..config import Config
from ..inputs import read_json_file
from ..storage import Store
from ..users import UserDirectory
from ..users.settings import email_problem, nick_problem
from .common import NotifierGroup, config_option

_SHOWN = ("name", "emails", "ircnicks", "groups", "delivery", "feed_token", "feed_url",
          "source")


@click.group(cls=NotifierGroup)
def users() -> None:
    """Add, list, show, remove and import users.

    A user has a name, e-mail addresses, IRC nicks, groups (for package
    ownership through groups), optional per-user delivery settings, and a
    feed token: a secret made when the user is created, for their feed URL.
    With [fasjson] url set, users without a local record are looked up in
    FASJSON; a local record always wins. FASJSON answers (including "no such
    user") are cached in the database for [fasjson] cache_ttl, shared by all
    notifier processes and kept across restarts.
    """


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _checked(what: str, problem: Callable[[str], str | None]) -> Callable[..., Any]:
    def check(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
              ) -> tuple[str, ...]:
        for value in values:
            why = problem(value)
            if why:
                raise click.BadParameter(f"{value!r} is not {what}: {why}", ctx=ctx,
                                         param=param)
        return values

    return check


@users.command()
@click.argument("name")
@click.option("--email", "emails", metavar="ADDRESS", multiple=True,
              callback=_checked("an email address", email_problem),
              help="E-mail address (repeatable).")
@click.option("--ircnick", "ircnicks", metavar="NICK", multiple=True,
              callback=_checked("an IRC nick", nick_problem),
              help="IRC nick (repeatable).")
@click.option("--group", "groups", metavar="GROUP", multiple=True,
              help="Group the user belongs to (repeatable).")
@config_option
def add(name: str, emails: tuple[str, ...], ircnicks: tuple[str, ...],
        groups: tuple[str, ...], config: Config) -> None:
    """Create the user NAME. Fails if NAME exists; use 'users import' to change users."""
    with Store.from_config(config) as store:
        store.add_user({"name": name, "emails": list(emails), "ircnicks": list(ircnicks),
                        "groups": list(groups)})
    click.echo(f"added user {name}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON record per line (as 'show --json'), instead of names.")
@config_option
def list_(as_json: bool, config: Config) -> None:
    """List the local users by name (FASJSON users are not listed)."""
    with Store.from_config(config) as store:
        for record in store.list_users():
            click.echo(_dump(record) if as_json else record["name"])


@users.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the record as one JSON object.")
@config_option
def show(name: str, as_json: bool, config: Config) -> None:
    """Show the user NAME: the local record, else the FASJSON profile.

    The record has name, emails, ircnicks, groups, delivery, feed_token (null
    for a FASJSON-only user) and source ("local" or "fasjson").
    """
    with Store.from_config(config) as store:
        record = UserDirectory(config, store).get(name)
        if record is None:
            near = difflib.get_close_matches(name, [u["name"] for u in store.list_users()], n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise click.ClickException(f"no user {name!r}{hint}")
    token = record.get("feed_token")
    record["feed_url"] = config.http.feed_url(record["name"], token) if token else None
    if as_json:
        click.echo(_dump(record))
        return
    for key in _SHOWN:
        value = record.get(key)
        if isinstance(value, list):
            text = ", ".join(value) or "-"
        elif isinstance(value, dict):
            text = _dump(value)
        else:
            text = "-" if value is None else str(value)
        click.echo(f"{key + ':':<12}{text}")


@users.command()
@click.argument("name")
@config_option
def remove(name: str, config: Config) -> None:
    """Delete the local user NAME. Their rules stay (they belong to the name)."""
    with Store.from_config(config) as store:
        if not store.remove_user(name):
            raise click.ClickException(f"no local user {name!r}")
    click.echo(f"removed user {name}")


@users.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@config_option
def import_(file: str, config: Config) -> None:
    """Create or update users from FILE ('-' for stdin), matched by name.

    FILE is a JSON list of records:

    \b
      [{"name": "alice", "emails": ["alice@example.org"],
        "ircnicks": ["alice"], "groups": ["packager"],
        "delivery": {"email": {"address": "alice@example.org"}}}]

    Only "name" is required. A key left out keeps the stored value (for a new
    user: empty, no delivery settings); a key given replaces it. Feed tokens
    are never imported: new users get a fresh one, existing users keep theirs.

    "delivery" (or null) holds per-destination settings: email takes
    "address" and "digest", irc "nick" and "digest", rss and desktop
    "digest". A digest is {"every": "1h", "max_items": 100}: every is a
    duration (30s, 15m, 1h, 2d) or daily@HH:MM, max_items 1 to 1000; null
    means no digest.

    All or nothing: every record is checked first, and if any record is
    invalid (unknown key, wrong type, an address that is not one, a bad
    digest, a repeated name) the error lists every problem, naming the file,
    the record, the field and, for a misspelt key, the nearest valid one; no
    user is changed.
    """
    records = read_json_file(file)
    shown = "<stdin>" if file == "-" else file
    with Store.from_config(config) as store:
        result = store.import_users(records, shown)
    click.echo(f"{shown}: {result.created} created, {result.updated} updated, "
               f"{result.unchanged} unchanged")


@users.command("login-link")
@click.argument("name")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=15, show_default=True,
              help="How long the link stays valid.")
@config_option
def login_link(name: str, minutes: int, config: Config) -> None:
    """Print a single-use sign-in link for the local user NAME.

    For a first sign-in, or for support: whoever opens the link within
    --minutes and presses its button is signed in as NAME, once. The link
    starts with [http] base_url.
    """
    from ..storage.credentials import Credentials

    with Store.from_config(config) as store:
        if store.get_user(name) is None:
            raise click.ClickException(f"no local user {name!r} (see 'notifier users list')")
        secret = Credentials(store).create_link(name, ttl=minutes * 60)
    click.echo(f"{config.http.public_url()}/signin/link/{secret}")
