"""``notifier history``: the stored messages."""

from __future__ import annotations

import difflib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import IO, Any

import click

from ..config import Config, parse_duration
from ..errors import InputError
from ..inputs import json_lines
from ..storage import Store
from ..storage.engine import json_loads
from .common import NotifierGroup, config_option

#: lines parsed before they are written, each batch in one transaction
BATCH = 5000
#: bytes read between progress bar updates
_BAR_STEP = 1 << 18


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


@click.group(cls=NotifierGroup)
def history() -> None:
    """Import, list and prune the message history; list rejected messages.

    notifier serve stores every message it receives; messages older than
    [history] retention (default 30d) are pruned. The messages it rejected
    are listed by 'notifier history rejected'.
    """


def _read_lines(name: str, fh: IO[bytes], bar: Any
                ) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, envelope or None, problem or None)`` for each non-blank line."""
    pending = 0

    def advance(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= _BAR_STEP:
            bar.update(pending)
            pending = 0

    for number, envelope in json_lines(name, fh, loads=json_loads,
                                       on_read=advance if bar is not None else None):
        if isinstance(envelope, InputError):
            yield number, None, str(envelope).split(": ", 1)[-1]
        elif not isinstance(envelope, dict):
            yield number, None, f"expected a JSON object, not {type(envelope).__name__}"
        elif not isinstance(envelope.get("topic"), str) or not envelope["topic"]:
            yield number, None, "no 'topic' string"
        else:
            yield number, envelope, None
    if bar is not None and pending:
        bar.update(pending)


@history.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@config_option
def import_(file: str, config: Config) -> None:
    """Add the messages in FILE ('-' for stdin), one JSON object per line.

    Each line is stored exactly as given. Accepted shapes: fedmsg envelopes
    ({"topic", "msg", "msg_id", "timestamp", ...}), fedora-messaging record
    lines ({"topic", "headers", "id", "body"}) and bare {"topic", "msg"}.
    The key is "msg_id", else "id", else a hash of the line's content, so a
    message already stored is skipped and importing a file twice is harmless.
    The time is "timestamp", else the "sent-at" header, else now.

    Lines that are not a JSON object with a "topic" are reported as FILE:LINE
    and skipped; the rest is imported, and the exit status is then 1. Lines
    are written in batches of 5000, each batch committed on its own. Each
    new message is described and indexed for the rule preview.
    """
    from ..meta import Describer

    describe = Describer(config).describe
    shown = "<stdin>" if file == "-" else file
    try:
        fh: IO[bytes] = sys.stdin.buffer if file == "-" else open(file, "rb")
    except OSError as exc:
        raise click.ClickException(f"{shown}: cannot read: {exc.strerror}") from exc
    size = os.fstat(fh.fileno()).st_size if file != "-" else 0
    show_bar = sys.stderr.isatty() and size > 0
    started = time.monotonic()
    read = inserted = bad = 0
    with Store.from_config(config) as store, fh:
        bar_cm: Any = (click.progressbar(length=size, label=f"Importing {shown}",
                                         file=sys.stderr, show_pos=False)
                       if show_bar else nullcontext(None))
        with bar_cm as bar:
            batch: list[dict[str, Any]] = []
            for number, envelope, problem in _read_lines(shown, fh, bar):
                if problem is not None:
                    bad += 1
                    click.echo(f"{shown}:{number}: {problem}; skipped", err=True)
                    continue
                read += 1
                batch.append(envelope)
                if len(batch) >= BATCH:
                    inserted += store.store_messages(batch, describe)
                    batch = []
            if batch:
                inserted += store.store_messages(batch, describe)
    elapsed = time.monotonic() - started
    click.echo(f"{shown}: {read} messages read, {inserted} new, {read - inserted} already "
               f"stored, {bad} bad lines skipped ({elapsed:.1f} s)")
    if bad:
        raise click.ClickException(f"{shown}: {bad} bad line{'s' if bad > 1 else ''} skipped")


@history.command("list")
@click.option("--since", metavar="DURATION", callback=_duration,
              help="Only messages newer than this, e.g. 30m, 12h, 7d.")
@click.option("--topic", "topic_glob", metavar="GLOB",
              help="Only topics matching this shell-style pattern, e.g. '*.git.receive'.")
@click.option("--json", "as_json", is_flag=True,
              help="One envelope per line, exactly as stored.")
@config_option
def list_(since: int | None, topic_glob: str | None, as_json: bool, config: Config) -> None:
    """Print stored messages, oldest first.

    Each line has the message time (local time zone), topic and message id.
    """
    start = None if since is None else time.time() - since
    with Store.from_config(config) as store:
        for row in store.message_rows(since=start, topic_glob=topic_glob):
            if as_json:
                click.echo(json.dumps(row.envelope, ensure_ascii=False, separators=(",", ":")))
            else:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.timestamp))
                click.echo(f"{stamp} {row.topic} {row.msg_id}")


@history.command()
@click.option("--all", "everything", is_flag=True,
              help="Index every stored message again, not only those without index rows.")
@config_option
def reindex(everything: bool, config: Config) -> None:
    """Describe stored messages and write the index the rule preview reads.

    notifier serve and 'history import' index each message as they store it.
    Messages stored before the index existed (an upgrade from a version
    without it) have no index rows until this runs; the rule preview
    describes those one by one, slowly. After a change to what describes
    messages ([meta] mappings, fedmsg.meta, schemas), --all indexes every
    message again. With the terminal on stderr, a progress bar shows.
    """
    from ..meta import Describer
    from ..storage.history_index import HistoryIndex

    describe = Describer(config).describe
    started = time.monotonic()
    with Store.from_config(config) as store:
        index = HistoryIndex(store)
        todo = store.count_messages() if everything else index.unindexed()
        bar_cm: Any = (click.progressbar(length=todo, label="Indexing the history",
                                         file=sys.stderr, show_pos=True)
                       if sys.stderr.isatty() and todo else nullcontext(None))
        with bar_cm as bar:
            done, failed = index.reindex(describe, everything=everything,
                                         progress=bar.update if bar is not None else None)
    elapsed = time.monotonic() - started
    skipped = f", {failed} could not be described (left out)" if failed else ""
    click.echo(f"{done} messages indexed{skipped} ({elapsed:.1f} s)")


@history.command()
@click.option("--older-than", metavar="DURATION", callback=_duration,
              help="Age past which messages go. Default: [history] retention.")
@config_option
def prune(older_than: int | None, config: Config) -> None:
    """Delete stored messages older than the retention period."""
    age = older_than if older_than is not None else parse_duration(config.history.retention)
    with Store.from_config(config) as store:
        removed = store.prune_history(age)
    click.echo(f"{removed} messages older than {age} s removed")


def _reasons_help() -> str:
    from ..bus.checks import REASONS

    return "\n".join(f"  {reason:<10} {meaning}" for reason, meaning in REASONS.items())


@history.command(epilog="\b\nReasons:\n" + _reasons_help())
@click.option("--since", metavar="DURATION", callback=_duration,
              help="Only messages rejected in this time, e.g. 30m, 12h, 1d.")
@click.option("--reason", metavar="REASON",
              help="Only messages rejected for this reason (listed below).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Only the newest N.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line: at, reason, detail, msg_id, topic, payload "
                   "(the envelope as received, undecodable bytes as \\xNN), size, truncated.")
@config_option
def rejected(since: int | None, reason: str | None, limit: int | None, as_json: bool,
             config: Config) -> None:
    """List the bus messages notifier serve rejected, oldest first, with the reason.

    A message is rejected alone when it fails a check at the boundary (size,
    JSON, nesting, numbers, field types, signature) or a stage of the pipeline
    (describe, match, render, record); everything around it goes on. Each
    line has the time (local time zone), the reason, the msg_id when the
    message had one, the topic and what was wrong. The newest [history]
    keep_rejected (default 10000) are kept, with the first 16 KiB of each.
    """
    from ..bus.checks import REASONS
    from ..storage.rejected import RejectedStore

    if reason is not None and reason not in REASONS:
        near = difflib.get_close_matches(reason, list(REASONS), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise click.BadParameter(f"{reason!r} is not a reason{hint}; reasons: "
                                 f"{', '.join(REASONS)}", param_hint="'--reason'")
    start = None if since is None else time.time() - since
    with Store.from_config(config) as store:
        rows = RejectedStore(store).list(since=start, reason=reason, limit=limit)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.to_dict(), ensure_ascii=False, separators=(",", ":")))
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.at))
            click.echo(f"{stamp} {row.reason} {row.msg_id or '-'} {row.topic or '-'}: "
                       f"{row.detail}")
