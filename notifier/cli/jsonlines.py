"""Reading JSON-lines input for the commands: a file, or ``-`` for stdin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from ..errors import InputError


def open_input(file: str) -> tuple[str, IO[bytes]]:
    """``(name for messages, binary stream)`` for ``file``; ``-`` is stdin."""
    if file == "-":
        return "stdin", sys.stdin.buffer
    try:
        return file, open(file, "rb")
    except OSError as exc:
        raise click.FileError(file, exc.strerror) from exc


def json_lines(name: str, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """``(line number, document or InputError)`` for each non-blank line.

    A line that is not UTF-8 or not JSON gives an :class:`InputError` naming
    ``name`` and the line, so a caller can report it and go on.
    """
    for number, raw in enumerate(stream, 1):
        where = f"{name} line {number}"
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield number, InputError(f"{where}: not UTF-8 (byte {exc.start + 1})")
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, InputError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            yield number, InputError(f"{where}: invalid JSON: nested too deeply")
