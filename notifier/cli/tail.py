"""``notifier-tail``: watch the bus."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import click

from ..bus.envelope import decode_envelope
from ..bus.transport import MalformedFrames
from ..bus.transports import open_subscriber
from ..config import Config
from ..errors import SignatureError
from .common import NotifierCommand, config_option

_KEY = re.compile(r'^(\s*)("(?:[^"\\]|\\.)*")(:)', re.MULTILINE)


def _pretty(envelope: dict[str, Any], colour: bool) -> str:
    text = json.dumps(envelope, indent=2, sort_keys=True, ensure_ascii=False)
    if not colour:
        return text
    return _KEY.sub(lambda m: m.group(1) + click.style(m.group(2), fg="blue", bold=True)
                    + m.group(3), text)


@click.command(cls=NotifierCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--topic", "topics", metavar="PREFIX", multiple=True,
              help="Only topics starting with PREFIX (repeatable).")
@click.option("--include", "includes", metavar="REGEX", multiple=True,
              help="Only topics matching REGEX (repeatable; any may match).")
@click.option("--exclude", "excludes", metavar="REGEX", multiple=True,
              help="Drop topics matching REGEX (repeatable).")
@click.option("--json", "fmt", flag_value="json", help="One compact envelope per line.")
@click.option("--pretty", "fmt", flag_value="pretty",
              help="Indented envelopes, coloured on a terminal.")
@click.option("--terse", "fmt", flag_value="terse", help="One line each: topic summary link.")
@click.option("--count", type=click.IntRange(min=1), metavar="N",
              help="Exit after N messages.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Exit non-zero if S seconds pass with nothing arriving.")
@click.option("--validate", is_flag=True,
              help="Drop messages whose signatures fail, reporting each on stderr. "
                   "Needs [crypto] ca_cert. On by default with validate_signatures = true.")
@config_option
def tail(topics: tuple[str, ...], includes: tuple[str, ...], excludes: tuple[str, ...],
         fmt: str | None, count: int | None, timeout: float | None, validate: bool,
         config: Config) -> None:
    """Print messages from the bus as they arrive.

    Connects to every address in [bus] endpoints. Without a format flag, it
    prints one line per message: time, topic and summary.
    """
    try:
        include = [re.compile(r) for r in includes]
        exclude = [re.compile(r) for r in excludes]
    except re.error as exc:
        raise click.BadParameter(f"{exc.pattern!r}: {exc}", param_hint="--include/--exclude") \
            from exc
    validator = None
    if validate or config.validate_signatures:
        from ..bus.signing import Validator

        validator = Validator.from_config(config)
    colour = sys.stdout.isatty()
    describer = None
    if fmt not in ("json", "pretty"):
        from ..meta import Describer

        describer = Describer(config)
    seen = 0
    with open_subscriber(config.bus.endpoints, topics or ("",),
                         config.bus.high_water_mark, bus=config.bus) as sub:
        while count is None or seen < count:
            try:
                frames = sub.recv(timeout)
            except MalformedFrames as exc:
                click.echo(f"notifier-tail: skipped a message: {exc}", err=True)
                continue
            if frames is None:
                raise click.ClickException(f"nothing arrived in {timeout:g} s "
                                           f"from {', '.join(config.bus.endpoints)}")
            try:
                envelope = decode_envelope(*frames)
            except ValueError as exc:
                click.echo(f"notifier-tail: skipped a message on {frames[0]!r}: {exc}", err=True)
                continue
            topic = str(envelope.get("topic", ""))
            if include and not any(r.search(topic) for r in include):
                continue
            if any(r.search(topic) for r in exclude):
                continue
            if validator is not None:
                try:
                    validator.validate(envelope)
                except SignatureError as exc:
                    click.echo(f"notifier-tail: dropped {envelope.get('msg_id')} on {topic}: "
                               f"{exc}", err=True)
                    continue
            seen += 1
            _show(envelope, fmt, colour, describer)


def _show(envelope: dict[str, Any], fmt: str | None, colour: bool, describer: Any) -> None:
    if fmt == "json":
        line = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    elif fmt == "pretty":
        line = _pretty(envelope, colour)
    else:
        described = describer.describe(envelope)
        summary, link = described["summary"], described.get("link") or ""
        topic = envelope.get("topic", "")
        if fmt == "terse":
            line = " ".join(part for part in (topic, summary, link) if part)
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(envelope.get("timestamp") or 0))
            line = f"{stamp} {click.style(topic, fg='cyan') if colour else topic} {summary}"
    click.echo(line)
    sys.stdout.flush()


def main() -> None:
    """Entry point of ``notifier-tail``."""
    tail.main(prog_name="notifier-tail")
