"""``notifier owners``: who owns which package."""

from __future__ import annotations

import json

import click

from ..config import Config
from ..inputs import read_json_file
from ..storage import Store
from ..users.ownership import check_ownership_file
from .common import NotifierGroup, config_option


@click.group(cls=NotifierGroup)
def owners() -> None:
    """Import and list package owners (users and groups).

    Rules that follow "packages I own" use these owners.
    """


@owners.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True,
              help="FILE is the complete list: packages missing from it lose all owners.")
@click.option("--dry-run", is_flag=True, help="Compute and print the changes, write nothing.")
@click.option("-v", "--verbose", is_flag=True,
              help="Print every change: '+ PACKAGE user|group NAME' or '- ...'.")
@config_option
def import_(file: str, replace: bool, dry_run: bool, verbose: bool, config: Config) -> None:
    """Update package owners from FILE ('-' for stdin).

    \b
      {"packages": {"python-requests": {"users": ["alice"],
                                        "groups": ["python-sig"]}}}

    Only the difference is written: for each package in FILE, owners that are
    stored but not listed are removed and listed ones that are new are added.
    A package missing from FILE keeps its owners, unless --replace is given.
    A package listed with empty (or no) "users" and "groups" loses its owners.
    Prints how many (package, owner) pairs were added and removed. The update
    is one transaction: on any error nothing changes.
    """
    shown = "<stdin>" if file == "-" else file
    packages = check_ownership_file(read_json_file(file), shown)
    with Store.from_config(config) as store:
        delta = store.apply_ownership(packages, replace=replace, dry_run=dry_run)
    if verbose:
        for sign, changes in (("-", delta.removed), ("+", delta.added)):
            for package, kind, name in changes:
                click.echo(f"{sign} {package} {kind} {name}")
    would = "would be " if dry_run else ""
    click.echo(f"{shown}: {len(packages)} packages, {len(delta.added)} owners {would}added, "
               f"{len(delta.removed)} {would}removed")


@owners.command("list")
@click.option("--package", metavar="NAME", help="Only this package.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per line: {"package", "kind", "name"}.')
@config_option
def list_(package: str | None, as_json: bool, config: Config) -> None:
    """List stored owners, one 'PACKAGE user|group NAME' per line, sorted."""
    with Store.from_config(config) as store:
        for pkg, kind, name in store.ownership():
            if package is not None and pkg != package:
                continue
            if as_json:
                click.echo(json.dumps({"package": pkg, "kind": kind, "name": name},
                                      ensure_ascii=False))
            else:
                click.echo(f"{pkg} {kind} {name}")
