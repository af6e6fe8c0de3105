"""``notifier owners``: who owns which package, container, module and flatpak."""

from __future__ import annotations

import json

import click

from ..config import Config
from ..inputs import read_json_file
from ..storage import Store
from ..users import artifacts
from ..users.ownership import check_ownership_file, passed_over
from .common import NotifierGroup, config_option


@click.group(cls=NotifierGroup)
def owners() -> None:
    """Import and list the owners (users and groups) of packages, containers, modules
    and flatpaks.

    Rules that follow "what I own" use these owners. A package is named by its
    name, the other kinds as containers/NAME, modules/NAME and flatpaks/NAME.
    """


@owners.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True,
              help="FILE is the complete list: artifacts missing from it lose all owners.")
@click.option("--dry-run", is_flag=True, help="Compute and print the changes, write nothing.")
@click.option("-v", "--verbose", is_flag=True,
              help="Print every change: '+ ARTIFACT user|group NAME' or '- ...'.")
@config_option
def import_(file: str, replace: bool, dry_run: bool, verbose: bool, config: Config) -> None:
    """Update the owners of packages, containers, modules and flatpaks from FILE
    ('-' for stdin).

    \b
      {"packages": {"python-requests": {"users": ["alice"],
                                        "groups": ["python-sig"]}},
       "containers": {"fedora-toolbox": {"users": ["bob"]}},
       "modules": {"nodejs": ["carol", "@nodejs-sig"]},
       "flatpaks": {"firefox": {"groups": ["flatpak-sig"]}}}

    Each kind is optional; dist-git's namespace names "rpms" and "container"
    are read too, and an owner list may be given as dist-git's owner alias
    files give it ("@name" for a group). Only the difference is written: for
    each artifact in FILE, owners that are stored but not listed are removed
    and listed ones that are new are added. An artifact missing from FILE
    keeps its owners, unless --replace is given. One listed with empty (or
    no) "users" and "groups" loses its owners. Prints how many (artifact,
    owner) pairs were added and removed. The update is one transaction: on
    any error nothing changes.
    """
    shown = "<stdin>" if file == "-" else file
    data = read_json_file(file)
    packages = check_ownership_file(data, shown)
    for key in passed_over(data):
        click.echo(f"{shown}: '{key}' passed over (dist-git's {key} namespace is no kind of "
                   "artifact that rules track)", err=True)
    with Store.from_config(config) as store:
        delta = store.apply_ownership(packages, replace=replace, dry_run=dry_run)
    if verbose:
        for sign, changes in (("-", delta.removed), ("+", delta.added)):
            for package, kind, name in changes:
                click.echo(f"{sign} {package} {kind} {name}")
    would = "would be " if dry_run else ""
    counts = {kind: 0 for kind in artifacts.KINDS}
    for key in packages:
        counts[artifacts.split(key)[0]] += 1
    listed = ", ".join(f"{n} {artifacts.NOUNS[kind]}s" for kind, n in counts.items()
                       if n or kind == "rpms")
    click.echo(f"{shown}: {listed}, {len(delta.added)} owners {would}added, "
               f"{len(delta.removed)} {would}removed")


@owners.command("list")
@click.option("--package", metavar="NAME",
              help="Only this artifact: a package's name, or containers/NAME, modules/NAME, "
                   "flatpaks/NAME.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per line: {"package", "kind", "name"}.')
@config_option
def list_(package: str | None, as_json: bool, config: Config) -> None:
    """List stored owners, one 'ARTIFACT user|group NAME' per line, sorted.

    ARTIFACT is a package's name, or containers/NAME, modules/NAME or
    flatpaks/NAME.
    """
    if package is not None:
        try:
            package = artifacts.parse(package)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--package") from exc
    with Store.from_config(config) as store:
        for pkg, kind, name in store.ownership():
            if package is not None and pkg != package:
                continue
            if as_json:
                click.echo(json.dumps({"package": pkg, "kind": kind, "name": name},
                                      ensure_ascii=False))
            else:
                click.echo(f"{pkg} {kind} {name}")
