"""``notifier describe``: what messages are about, one JSON line each."""

from __future__ import annotations

import json
import sys

import click

from ..config import Config
from ..errors import InputError
from ..inputs import json_lines, open_input
from .common import NotifierCommand, config_option, setup_logging


@click.command(cls=NotifierCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", default="-", metavar="[FILE]")
@click.option("-v", "--verbose", is_flag=True,
              help="Log why a source could not describe a message (debug messages).")
@config_option
def describe(file: str, verbose: bool, config: Config) -> None:
    """Describe messages: application, summary, link, users, artifacts, severity.

    Reads FILE (or stdin, when FILE is omitted or '-'), one JSON message per
    line, in any of these forms:

    \b
      a fedmsg envelope        {"topic": ..., "msg": {...}, "msg_id": ..., ...}
                               (datanommer copies and notifier-tail --json output too)
      a fedora-messaging one   {"topic": ..., "headers": {...}, "id": ..., "body": {...}}
                               (what 'fedora-messaging record' writes)
      a bare message           {"topic": ..., "msg": {...}}

    Prints one JSON object per message, with the keys msg_id, topic, app,
    summary, link, icon, usernames, agent, the artifacts it concerns by kind
    (packages, containers, modules, flatpaks), groups and severity (debug,
    info, warning or error). A message without an id gets a stable
    one, "sha256:" and the hash of the message.

    Descriptions come from, best first: the [[meta.mappings]] of the config;
    fedora-messaging schema classes, when installed; fedmsg.meta processors,
    when installed; and the topic and body themselves. Nothing is fetched
    from the network.

    A line that is not a message is reported on stderr with its file and line
    number, and the rest is still described; the exit status is then 1.

    \b
    Examples:
      notifier describe datanommer-dump.jsonl
      notifier-tail --json | notifier describe
      fedora-messaging record --limit 10 - | notifier describe
    """
    setup_logging(1 if verbose else 0)
    from ..meta import Describer

    describer = Describer(config)
    name, stream = open_input(file)
    # Reading a pipe, show each description as soon as it is made.
    streaming = file == "-"
    failed = 0
    try:
        for number, document in json_lines(name, stream):
            if isinstance(document, InputError):
                failed += 1
                click.echo(f"notifier describe: {document}", err=True)
                continue
            try:
                described = describer.describe(document)
            except InputError as exc:
                failed += 1
                click.echo(f"notifier describe: {name} line {number}: {exc}", err=True)
                continue
            click.echo(json.dumps(described, ensure_ascii=False))
            if streaming:
                sys.stdout.flush()
    finally:
        if file != "-":
            stream.close()
    if failed:
        click.echo(f"notifier describe: {failed} line{'s' if failed != 1 else ''} of {name} "
                   "could not be described", err=True)
        sys.exit(1)
