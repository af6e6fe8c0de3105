"""``notifier rules``: the per-user rules that decide who gets which message."""

from __future__ import annotations

import dataclasses
import difflib
import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click

from ..config import Config, parse_duration
from ..errors import InputError, RuleError
from ..inputs import read_json_file
from ..rules.model import SEVERITIES, TRACK_FIELDS, TRACK_KINDS, Rule
from ..rules.validation import load_rules_file, parse_rule
from ..storage import Store
from .common import NotifierGroup, config_option

RULE_HELP = """\b
A rule, as 'import', 'export' and 'show' write it:
  {"user": "alice", "name": "My packages", "disabled": false,
   "track": {"kind": "artifacts-owned"},
   "filters": {"applications": [], "excluded_applications": [],
               "severities": ["info", "warning", "error"],
               "my_actions": false, "topic": null},
   "destinations": ["email", "irc", "rss", "desktop"]}

\b
Track kinds (which messages the rule looks at):
  artifacts-owned        a message artifact is owned by one of "users"
                         (default: the rule's user)
  artifacts-group-owned  a message artifact is owned by one of "groups"
  artifacts-followed     a message artifact is one of "packages"
  related-events         the rule's user is among the message's users
  users-followed         the message's agent is one of "users"
  topics                 one of the "patterns" (globs) matches the topic

Artifacts are packages, containers, modules and flatpaks: a package by its
name ("kernel"), the others as "containers/NAME", "modules/NAME",
"flatpaks/NAME"; "rpms/NAME" and dist-git's "container/NAME" are read too.
Owners come from 'notifier owners import'.

\b
Filters, all of which must hold (missing ones take these defaults):
  applications           [] = any; else the message's app is listed
  excluded_applications  the message's app is not listed
  severities             ["info", "warning", "error"]; also "debug"
  my_actions             false: skip messages whose agent is the rule's user
  topic                  null, or a glob the topic must match

Application names are compared case-insensitively. Globs follow Python's
fnmatch.fnmatchcase: case-sensitive, '*' matches anything including dots,
'?' one character, '[...]' a character class. A disabled rule matches
nothing. Destinations are backend names: email, irc, rss, desktop, and any
installed as plugins."""


@click.group(cls=NotifierGroup, help=f"""Add, list, show, remove, import, export and test rules.

Each user has any number of named rules; a message goes to a user when one
of their rules matches it, on the union of the matching rules' destinations.

{RULE_HELP}""")
def rules() -> None:
    pass


def _dump(data: Any, pretty: bool = False) -> str:
    if pretty:
        return json.dumps(data, ensure_ascii=False, indent=2)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _missing_setting(config: Config, destination: str) -> str | None:
    """The setting ``destination``'s backend needs and ``config`` lacks, or None.

    Email falls back to a Maildir and feeds need nothing; desktop reaches the
    ``[dbus] user`` over D-Bus and everyone else through the live stream.
    """
    if destination == "irc" and not config.irc.host:
        return "[irc] host"
    return None


def _warn_unconfigured(config: Config, rules: Iterable[Rule], shown: str) -> None:
    """Warn on stderr about each destination of ``rules`` that no backend can deliver to."""
    users: dict[str, list[str]] = {}
    for rule in rules:
        for destination in rule.destinations:
            if _missing_setting(config, destination):
                users.setdefault(destination, []).append(f"{rule.user} {rule.name!r}")
    where = " nor ".join(config.sources) or "the configuration (built-in defaults)"
    for destination, named in sorted(users.items()):
        listed = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
        click.echo(f"warning: {shown}: destination '{destination}' has no backend configured: "
                   f"'{_missing_setting(config, destination)}' is not set in {where}; nothing "
                   f"reaches {destination} until it is. Used by: {listed}", err=True)


def _no_rule(store: Store, user: str, name: str) -> click.ClickException:
    names = [r["name"] for r in store.list_rules(user)]
    if not names:
        return click.ClickException(f"{user} has no rules")
    near = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return click.ClickException(f"{user} has no rule named {name!r}{hint}")


@rules.command()
@click.argument("user")
@click.argument("name")
@click.option("--track", "kind", required=True, type=click.Choice(TRACK_KINDS),
              help="What the rule looks at (see 'notifier rules --help').")
@click.option("--target", "targets", metavar="VALUE", multiple=True,
              help="What the kind tracks, repeatable: an owner (artifacts-owned, default "
                   "USER), a group, a package (or containers/NAME, modules/NAME, "
                   "flatpaks/NAME), a followed user, or a topic glob (topics).")
@click.option("--app", "apps", metavar="NAME", multiple=True,
              help="Only messages from this application (repeatable).")
@click.option("--exclude-app", "excluded", metavar="NAME", multiple=True,
              help="Never messages from this application (repeatable).")
@click.option("--severity", "severities", type=click.Choice(SEVERITIES), multiple=True,
              help="Only these severities (repeatable; default info, warning, error).")
@click.option("--my-actions", is_flag=True,
              help="Also messages about what USER did themselves.")
@click.option("--topic", metavar="GLOB", help="Only messages whose topic matches GLOB.")
@click.option("--destination", "destinations", metavar="NAME", multiple=True, required=True,
              help="Where notifications go (repeatable): email, irc, rss, desktop.")
@click.option("--disabled", is_flag=True, help="Store the rule switched off.")
@click.option("--replace", is_flag=True, help="Replace USER's rule NAME if it exists.")
@config_option
def add(user: str, name: str, kind: str, targets: tuple[str, ...], apps: tuple[str, ...],
        excluded: tuple[str, ...], severities: tuple[str, ...], my_actions: bool,
        topic: str | None, destinations: tuple[str, ...], disabled: bool, replace: bool,
        config: Config) -> None:
    """Add the rule NAME for USER.

    \b
    Examples:
      notifier rules add alice "My packages" --track artifacts-owned \\
          --destination email --destination irc
      notifier rules add bob "Kernel" --track artifacts-followed --target kernel \\
          --severity warning --severity error --destination rss
      notifier rules add bob "Toolbox" --track artifacts-followed \\
          --target containers/fedora-toolbox --destination email
      notifier rules add carol "Bodhi comments" --track topics \\
          --target 'org.fedoraproject.*.bodhi.update.comment' --destination desktop
    """
    track: dict[str, Any] = {"kind": kind}
    field = TRACK_FIELDS[kind]
    if targets:
        if field is None:
            raise click.UsageError(f"--target: kind '{kind}' takes no targets")
        track[field] = list(targets)
    filters: dict[str, Any] = {"applications": list(apps), "excluded_applications": list(excluded),
                               "my_actions": my_actions, "topic": topic}
    if severities:
        filters["severities"] = list(severities)
    data = {"user": user, "name": name, "disabled": disabled, "track": track,
            "filters": filters, "destinations": list(destinations)}
    rule = parse_rule(data, source="command line")
    with Store.from_config(config) as store:
        if not replace and store.get_rule(user, name) is not None:
            raise click.ClickException(f"{user} already has a rule named {name!r} "
                                       "(use --replace to change it)")
        store.upsert_rules([rule.to_dict()])
    click.echo(f"{'saved' if replace else 'added'} rule {name!r} of {user}")
    _warn_unconfigured(config, [rule], "command line")


def _summary(rule: dict[str, Any]) -> str:
    track = rule.get("track") or {}
    kind = str(track.get("kind", "?"))
    field = TRACK_FIELDS.get(kind)
    if field and track.get(field):
        kind += f" ({', '.join(map(str, track[field]))})"
    return kind


@rules.command("list")
@click.option("--user", metavar="USER", help="Only USER's rules.")
@click.option("--json", "as_json", is_flag=True, help="One JSON rule per line.")
@config_option
def list_(user: str | None, as_json: bool, config: Config) -> None:
    """List rules, by user then name.

    Each line reads USER, NAME, what the rule tracks, its destinations, and
    '(disabled)' when it is off; columns are separated by tabs.
    """
    with Store.from_config(config) as store:
        stored = store.list_rules(user)
    for rule in stored:
        if as_json:
            click.echo(_dump(rule))
            continue
        dests = ",".join(map(str, rule.get("destinations") or []))
        off = "\t(disabled)" if rule.get("disabled") else ""
        click.echo(f"{rule['user']}\t{rule['name']}\t{_summary(rule)}\t{dests}{off}")


@rules.command()
@click.argument("user")
@click.argument("name")
@config_option
def show(user: str, name: str, config: Config) -> None:
    """Print USER's rule NAME as JSON, every default filled in."""
    with Store.from_config(config) as store:
        rule = store.get_rule(user, name)
        if rule is None:
            raise _no_rule(store, user, name)
    try:
        rule = parse_rule(rule, source="database", ignore_unknown=True).to_dict()
    except RuleError:
        pass  # show what is stored, even if it no longer validates
    click.echo(_dump(rule, pretty=True))


@rules.command()
@click.argument("user")
@click.argument("name")
@config_option
def remove(user: str, name: str, config: Config) -> None:
    """Delete USER's rule NAME."""
    with Store.from_config(config) as store:
        if not store.remove_rule(user, name):
            raise _no_rule(store, user, name)
    click.echo(f"removed rule {name!r} of {user}")


def _switch(user: str, name: str, disabled: bool, config: Config) -> None:
    with Store.from_config(config) as store:
        if not store.set_rule_disabled(user, name, disabled):
            raise _no_rule(store, user, name)
    click.echo(f"{'disabled' if disabled else 'enabled'} rule {name!r} of {user}")


@rules.command()
@click.argument("user")
@click.argument("name")
@config_option
def disable(user: str, name: str, config: Config) -> None:
    """Switch USER's rule NAME off: it matches nothing until enabled."""
    _switch(user, name, True, config)


@rules.command()
@click.argument("user")
@click.argument("name")
@config_option
def enable(user: str, name: str, config: Config) -> None:
    """Switch USER's rule NAME back on."""
    _switch(user, name, False, config)


@rules.command("import", help=f"""Add or update the rules in FILE ('-' for stdin).

FILE holds a JSON list of rules. Each is stored under its user and name,
replacing a stored rule of the same user and name; other stored rules are
kept.

All or nothing: every rule is checked first, and if any is invalid nothing
is stored. The error lists every invalid rule at once, by position in the
file (from 0) and name, with the field at fault and, for a misspelt key,
kind, severity or destination, the nearest valid word.

A destination that no backend is configured for (irc without [irc] host)
is reported on stderr with the rules that use it; the rules are still
stored.

{RULE_HELP}""")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Check FILE, store nothing.")
@config_option
def import_(file: str, dry_run: bool, config: Config) -> None:
    shown = "<stdin>" if file == "-" else file
    try:
        loaded = load_rules_file(file)
    except RuleError as exc:
        raise RuleError(f"{exc}\nnothing was imported") from exc
    if dry_run:
        click.echo(f"{shown}: {len(loaded)} rules, all valid (dry run: nothing stored)")
    else:
        with Store.from_config(config) as store:
            changed = store.upsert_rules([rule.to_dict() for rule in loaded])
        click.echo(f"{shown}: {len(loaded)} rules, {changed} added or changed")
    _warn_unconfigured(config, loaded, shown)


@rules.command()
@click.option("--user", metavar="USER", help="Only USER's rules.")
@click.option("-o", "--output", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True),
              default="-", help="Write to FILE instead of stdout.")
@config_option
def export(user: str | None, output: str, config: Config) -> None:
    """Write the stored rules as a JSON list, which 'rules import' reads back."""
    with Store.from_config(config) as store:
        stored = store.list_rules(user)
    text = _dump(stored, pretty=True) + "\n"
    if output == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from exc
    click.echo(f"{output}: {len(stored)} rules", err=True)


def _rule_from_file(file: str) -> Rule:
    shown = "<stdin>" if file == "-" else file
    data = read_json_file(file)
    if isinstance(data, list):
        if len(data) != 1:
            raise RuleError(f"{shown}: holds {len(data)} rules; 'rules test' takes one "
                            "(a JSON object, or a list of one)")
        data = data[0]
    return parse_rule(data, source=shown)


@rules.command("test")
@click.argument("rule_file", metavar="RULE.json",
                type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--since", default="7d", show_default=True, metavar="DURATION",
              help="How far back to look: 30m, 12h, 7d, 2w...")
@click.option("--json", "as_json", is_flag=True,
              help="Print each matching message as a described record (JSON line).")
@config_option
def test(rule_file: str, since: str, as_json: bool, config: Config) -> None:
    """Show which stored messages the rule in RULE.json would have matched.

    RULE.json holds one rule (a JSON object, or a list of one); it is checked
    as 'rules import' would, but not stored. The messages of the history
    newer than --since that the rule concerns are found through the
    history's index, then described and matched against that rule alone,
    with the stored package owners. Prints one line per match, oldest first:
    local time, topic and summary; a count goes to stderr at the end. A
    disabled rule is tested as if it were enabled. Messages stored before the
    index existed are described one by one until 'notifier history reindex'
    has run.
    """
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from exc
    rule = _rule_from_file(rule_file)
    if rule.disabled:
        click.echo("note: the rule is disabled; testing it as if it were enabled", err=True)
    rule = dataclasses.replace(rule, disabled=False, snoozed_until=None)
    from ..meta import Describer
    from ..rules.preview import RulePreview

    start = time.time() - seconds
    with Store.from_config(config) as store:
        preview = RulePreview(store, Describer(config))
        found = list(preview.matches(rule, start))
        seen = store.count_messages(since=start)
    found.reverse()  # oldest first, as 'history list' prints
    for match in found:
        if as_json:
            click.echo(_dump(match.record))
        else:
            stamp = datetime.fromtimestamp(match.timestamp).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{stamp}  {match.record['topic']}  {match.record.get('summary') or ''}")
    click.echo(f"{len(found)} of {seen} messages since {since} ago matched", err=True)
