"""``notifier-logger``: publish text or JSON from the command line or stdin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import click

from ..bus.publisher import Publisher
from ..config import Config
from ..errors import InputError
from .common import NotifierCommand, config_option


def json_documents(lines: Iterable[str], source: str = "stdin") -> Iterator[Any]:
    """Yield JSON documents from ``lines``: one per line, or one spread over several.

    A document that cannot be parsed yields an :class:`InputError` (instead of
    a value) naming the line it started on; parsing goes on after it.
    """
    decoder = json.JSONDecoder()
    buffer, start = "", 0
    for number, line in enumerate(lines, 1):
        if not buffer.strip():
            buffer, start = "", number
        buffer += line
        while buffer.strip():
            text = buffer.lstrip()
            try:
                value, end = decoder.raw_decode(text)
            except json.JSONDecodeError as exc:
                if exc.pos >= len(text.rstrip()):
                    break  # the document goes on in the next line
                yield InputError(f"{source} line {start + text.count(chr(10), 0, exc.pos)}: "
                                 f"invalid JSON: {exc.msg} (column {exc.colno})")
                buffer = ""
                break
            yield value
            buffer = text[end:]
            start = number
    if buffer.strip():
        yield InputError(f"{source} line {start}: invalid JSON: the document is not complete "
                         "at the end of input")


def _text_lines(stream: TextIO) -> Iterator[dict[str, str]]:
    for line in stream:
        line = line.rstrip("\r\n")
        if line:
            yield {"log": line}


@click.command(cls=NotifierCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--message", metavar="TEXT",
              help="Send this instead of reading stdin: {\"log\": TEXT}, or the JSON itself "
                   "with --json-input.")
@click.option("--json-input", is_flag=True,
              help="Input is JSON: one document per line, or one spread over several lines.")
@click.option("--topic", default="log", show_default=True,
              help="Topic, after {topic_prefix}.{environment}.{modname}.")
@click.option("--modname", default="logger", show_default=True, help="Module name in the topic.")
@click.option("--timeout", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for the relay before failing.")
@config_option
def logger(message: str | None, json_input: bool, topic: str, modname: str, timeout: float,
           config: Config) -> None:
    """Publish messages on the bus, like fedmsg-logger.

    \b
    echo "Hello World." | notifier-logger --modname=git --topic=repo.update
    echo '{"a": 1}' | notifier-logger --json-input
    notifier-logger --message="This is a message."
    notifier-logger --message='{"a": 1}' --json-input

    Without --message, each line of stdin is one message. Exits non-zero,
    naming the relay's address, if no relay answers within --timeout; and
    non-zero after sending the rest if some input was not valid JSON.

    Messages are stored and delivered by 'notifier serve', which runs the
    relay too; a separate 'notifier relay' alone forwards them to no one.
    """
    if message is not None:
        items: Iterable[Any] = (json_documents([message], "--message") if json_input
                                else [{"log": message}])
    elif sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("nothing to send: give --message or pipe text into stdin")
    else:
        items = json_documents(sys.stdin) if json_input else _text_lines(sys.stdin)
    errors = sent = 0
    describe = None
    if Publisher.wants_description(config):  # AMQP headers carry users, packages, severity
        from ..meta import Describer

        describe = Describer(config).describe_for_headers
    with Publisher(config, timeout=timeout, describe=describe) as publisher:
        for item in items:
            if isinstance(item, InputError):
                click.echo(f"notifier-logger: {item}", err=True)
                errors += 1
                continue
            publisher.publish(topic=topic, msg=item, modname=modname)
            sent += 1
    if errors:
        raise click.ClickException(f"{errors} input error(s); the other {sent} message(s) "
                                   "were sent")


def main() -> None:
    """Entry point of ``notifier-logger``."""
    logger.main(prog_name="notifier-logger")
