"""``notifier outbox``: what is waiting, failed or dead, and sending it again."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..config import Config
from .common import NotifierGroup, config_option


@click.group(cls=NotifierGroup)
def outbox() -> None:
    """Look at the delivery outbox and retry what failed.

    States: pending (not tried yet), failed (retried with backoff), sent,
    dead (given up on), held (collected for a digest), digested.
    """


def _open(config: Config) -> Any:
    from ..storage import Store
    from ..storage.outbox import Outbox

    return Outbox(Store.from_config(config))


@outbox.command("list")
@config_option
@click.option("--dead", is_flag=True, help="Only dead notifications.")
@click.option("--state", type=click.Choice(
    ["pending", "failed", "sent", "dead", "held", "digested"]), help="Only this state.")
@click.option("--all", "every", is_flag=True, help="Every state, sent ones included.")
@click.option("--user", help="Only this user's.")
@click.option("--destination", help="Only this destination (email, irc, rss, desktop).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_(config: Config, dead: bool, state: str | None, every: bool, user: str | None,
          destination: str | None, as_json: bool) -> None:
    """List notifications; by default those not yet delivered (pending, failed, held, dead)."""
    if sum((dead, state is not None, every)) > 1:
        raise click.UsageError("give at most one of --dead, --state and --all")
    wanted: tuple[str, ...] | None = ("pending", "failed", "held", "dead")
    if dead:
        wanted = ("dead",)
    elif state:
        wanted = (state,)
    elif every:
        wanted = None
    rows = _open(config).rows(states=wanted, user=user, destination=destination)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.to_dict(), ensure_ascii=False))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.created_at))
        error = f"  {row.last_error}" if row.last_error else ""
        click.echo(f"{row.id:>8} {when} {row.state:<9} {row.destination:<8} {row.user:<16} "
                   f"{row.msg_id} attempts={row.attempts}{error}")
    if not as_json:
        click.echo(f"{len(rows)} notification(s)", err=True)


@outbox.command()
@config_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Also retry failed ones now, not at their time.")
def retry(config: Config, ids: tuple[int, ...], failed: bool) -> None:
    """Send dead notifications again (all, or those with the given IDS).

    Their attempts start again from zero; a running 'notifier serve' picks
    them up within a second. Given IDS that are unknown, or not dead (nor
    failed, with --failed), are named with their state, and the exit status
    is then 1; the others are still retried.
    """
    states = ("dead", "failed") if failed else ("dead",)
    box = _open(config)
    wanted = list(dict.fromkeys(ids))
    known = box.states(wanted) if wanted else {}
    retryable = [i for i in wanted if known.get(i) in states]
    n = box.retry(retryable if ids else None, states=states) if retryable or not ids else 0
    click.echo(f"{n} notification(s) will be sent again")
    unknown = [str(i) for i in wanted if i not in known]
    other = [f"{i} ({known[i]})" for i in wanted if i in known and known[i] not in states]
    if unknown or other:
        problems = []
        if unknown:
            problems.append(f"unknown: {', '.join(unknown)}")
        if other:
            takes = "dead or failed ones" if failed else "dead ones (failed ones with --failed)"
            problems.append(f"not retryable: {', '.join(other)}; retry takes {takes}")
        raise click.ClickException(f"{len(unknown) + len(other)} of {len(wanted)} id(s) not "
                                   f"retried:\n  " + "\n  ".join(problems))
