"""Reading JSON input for the commands: one document from a file, or JSON lines.

Every command that reads JSON reads it here, so every one reports a bad
file, line or document the same way, as an :class:`~notifier.errors.InputError`
naming the file (``<stdin>`` for ``-``), the line and the column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from .errors import InputError


def open_input(file: str) -> tuple[str, IO[bytes]]:
    """``(name for messages, binary stream)`` for ``file``; ``-`` is stdin."""
    if file == "-":
        return "<stdin>", sys.stdin.buffer
    try:
        return file, open(file, "rb")
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from exc


def read_json_file(path: str) -> Any:
    """The one JSON document in ``path`` (``-`` for stdin)."""
    name, stream = open_input(path)
    try:
        raw = stream.read()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    finally:
        if path != "-":
            stream.close()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start + 1})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise InputError(f"{name}: not valid JSON: nested too deeply") from exc


def json_lines(name: str, stream: IO[bytes], *, loads: Callable[[bytes], Any] | None = None,
               on_read: Callable[[int], None] | None = None
               ) -> Iterator[tuple[int, Any]]:
    """``(line number, document or InputError)`` for each non-blank line.

    A line that is not UTF-8 or not JSON gives an :class:`InputError` naming
    ``name`` and the line, so a caller can report it and go on. ``loads``
    replaces :func:`json.loads` (a faster parser, say); ``on_read`` is told
    how many bytes each line had, for a progress bar.
    """
    for number, raw in enumerate(stream, 1):
        if on_read is not None:
            on_read(len(raw))
        where = f"{name} line {number}"
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield number, InputError(f"{where}: not UTF-8 (byte {exc.start + 1})")
            continue
        if not line.strip():
            continue
        try:
            yield number, (loads or json.loads)(line)
        except json.JSONDecodeError as exc:
            yield number, InputError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            yield number, InputError(f"{where}: invalid JSON: nested too deeply")
        except ValueError as exc:  # what another parser raises
            yield number, InputError(f"{where}: invalid JSON: {exc}")
