"""``notifier tokens``: personal access tokens, for programs acting for a person."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from ..config import Config
from ..storage import Store
from ..storage.credentials import SCOPES, Credentials
from .common import NotifierGroup, config_option


@click.group(cls=NotifierGroup)
def tokens() -> None:
    """Create, list and revoke a user's personal access tokens.

    Programs such as the desktop app send a token as 'Authorization: Bearer
    TOKEN' to the API under /api/v1, and may use it in place of the feed
    token in feed and stream URLs. A 'read' token reads; a 'write' token also
    changes rules and settings. Only a hash of each token is stored: it is
    shown once, when it is created. People manage their own in the web API.
    """


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _user(store: Store, user: str) -> None:
    if store.get_user(user) is None:
        raise click.ClickException(f"no local user {user!r} (see 'notifier users list')")


@tokens.command()
@click.argument("user")
@click.option("--name", required=True, help="What the token is for, e.g. 'laptop desktop app'.")
@click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True,
              help="'read', or 'write' to also change rules and settings.")
@config_option
def create(user: str, name: str, scope: str, config: Config) -> None:
    """Create a token for USER and print it (this once only)."""
    with Store.from_config(config) as store:
        _user(store, user)
        secret, token = Credentials(store).create_token(user, name, scope)
    click.echo(secret)
    click.echo(f"token {token.id} {token.name!r} ({token.scope}) for {user}: keep it secret; "
               "it is not shown again", err=True)


@tokens.command("list")
@click.argument("user")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def list_(user: str, as_json: bool, config: Config) -> None:
    """List USER's tokens: id, name, scope, created, last used."""
    with Store.from_config(config) as store:
        _user(store, user)
        found = Credentials(store).tokens(user)
    for token in found:
        if as_json:
            click.echo(json.dumps(token.to_dict(), ensure_ascii=False))
        else:
            click.echo(f"{token.id}\t{token.name}\t{token.scope}\tcreated "
                       f"{_when(token.created_at)}\tlast used {_when(token.last_used)}")
    if not found and not as_json:
        click.echo(f"{user} has no tokens", err=True)


@tokens.command()
@click.argument("user")
@click.argument("token")
@config_option
def revoke(user: str, token: str, config: Config) -> None:
    """Revoke USER's TOKEN, given by its id or its name. It stops working at once."""
    with Store.from_config(config) as store:
        _user(store, user)
        credentials = Credentials(store)
        done = (token.isdigit() and credentials.revoke_token(user, int(token))) \
            or credentials.revoke_token(user, token)
    if not done:
        raise click.ClickException(f"{user} has no token with id or name {token!r} "
                                   f"(see 'notifier tokens list {user}')")
    click.echo(f"revoked token {token!r} of {user}")
