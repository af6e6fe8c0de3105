"""``notifier match``: who would get each message, by which rules, on which destinations."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import click

from ..config import Config
from ..errors import InputError
from ..inputs import json_lines, open_input
from ..rules.model import SEVERITIES
from .common import NotifierCommand, config_option, setup_logging

_LISTS = ("usernames", "packages", "containers", "modules", "flatpaks", "groups")
_TEXTS = ("msg_id", "app", "agent", "summary", "link", "icon")


def check_record(doc: Any, where: str) -> dict[str, Any]:
    """Check a described record (as ``notifier describe`` prints it) and return it.

    Only ``topic`` is required; missing lists are empty, a missing severity
    is info. Raises :class:`InputError` naming ``where`` and the field.
    """
    if not isinstance(doc, dict):
        raise InputError(f"{where}: a described record must be a JSON object, "
                         f"not {type(doc).__name__}")
    if not isinstance(doc.get("topic"), str):
        raise InputError(f"{where}: 'topic' must be a string (is this a raw message? "
                         "then leave out --described)")
    record = dict(doc)
    for key in _LISTS:
        value = record.get(key)
        if value is None:
            record[key] = []
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where}: '{key}' must be a list of strings")
    for key in _TEXTS:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}: '{key}' must be a string or null")
    severity = record.get("severity")
    if severity is None:
        record["severity"] = "info"
    elif severity not in SEVERITIES:
        raise InputError(f"{where}: 'severity' must be one of {', '.join(SEVERITIES)}, "
                         f"not {severity!r}")
    return record


def _progress(rules: list[Any]) -> Iterator[Any]:
    """A progress bar on stderr while the rules load, when stderr is a terminal."""
    if not sys.stderr.isatty() or len(rules) < 10000:
        yield from rules
        return
    with click.progressbar(rules, label="Loading rules", file=sys.stderr) as bar:
        yield from bar


@click.command(cls=NotifierCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", default="-", metavar="[FILE]")
@click.option("--described", is_flag=True,
              help="Input lines are described records, as 'notifier describe' prints.")
@click.option("--explain", is_flag=True,
              help="Add, per recipient, why each of their rules matched.")
@click.option("-v", "--verbose", is_flag=True, help="Log more (debug messages).")
@config_option
def match(file: str, described: bool, explain: bool, verbose: bool, config: Config) -> None:
    """Match messages against every stored rule: who gets each one, and how.

    Reads FILE (or stdin, when FILE is omitted or '-'), one JSON message per
    line: a fedmsg envelope, a fedora-messaging record line or a bare
    {"topic", "msg"}, each described as 'notifier describe' does; or, with
    --described, records that 'notifier describe' printed. Rules and package
    owners come from the database.

    Prints one JSON line per message:

    \b
      {"msg_id": "...", "recipients": [
         {"user": "alice", "rules": ["My packages"], "destinations": ["email", "irc"]}]}

    Recipients are sorted by user name and their rule names sorted; the
    destinations are the union of the matching rules' destinations. With
    --explain each recipient also has "why": rule name -> reason, such as
    "package 'kernel' is owned by alice". Nothing is sent.

    A line that is not a message is reported on stderr with its file and line
    number, and the rest is still matched; the exit status is then 1.

    \b
    Examples:
      notifier match --explain messages.jsonl
      notifier describe dump.jsonl | notifier match --described
    """
    setup_logging(1 if verbose else 0)
    if not verbose:
        # Opening the database logs schema checks at info level: not wanted here.
        logging.getLogger().setLevel(logging.WARNING)
    from ..rules.matcher import Matcher
    from ..storage import Store

    with Store.from_config(config) as store:
        # As serve does: a stored rule that no longer validates is left out, and said.
        matcher = Matcher.from_store(store, progress=_progress, on_invalid=lambda problem:
                                     click.echo(f"warning: a stored rule is left out: "
                                                f"{problem}", err=True))
    describer = None
    if not described:
        from ..meta import Describer

        describer = Describer(config)
    name, stream = open_input(file)
    streaming = file == "-"
    failed = 0
    try:
        for number, doc in json_lines(name, stream):
            where = f"{name} line {number}"
            try:
                if isinstance(doc, InputError):
                    raise doc
                if describer is None:
                    record = check_record(doc, where)
                else:
                    try:
                        record = describer.describe(doc)
                    except InputError as exc:
                        raise InputError(f"{where}: {exc}") from exc
            except InputError as exc:
                failed += 1
                click.echo(f"notifier match: {exc}", err=True)
                continue
            recipients = [r.to_dict() for r in matcher.match(record, explain=explain)]
            click.echo(json.dumps({"msg_id": record.get("msg_id"), "recipients": recipients},
                                  ensure_ascii=False))
            if streaming:
                sys.stdout.flush()
    finally:
        if file != "-":
            stream.close()
    if failed:
        click.echo(f"notifier match: {failed} line{'s' if failed != 1 else ''} of {name} "
                   "could not be matched", err=True)
        sys.exit(1)
