"""Parsing received JSON without trusting it: depth, numbers and text are bounded.

:func:`loads_checked` parses bytes from the bus and refuses, with a reason,
what later stages cannot hold or store:

* nesting deeper than ``max_depth`` (never a ``RecursionError``: orjson stops
  at 1,024 levels in C, and the walk below is iterative);
* ``NaN``, ``Infinity`` and numbers that overflow to them, and integers
  beyond 64 bits (orjson would silently turn those into floats);
* a NUL character or a lone surrogate in any string or key (neither can be
  stored in PostgreSQL text, nor encoded as UTF-8 for SQLite);
* bytes that are not UTF-8.

orjson parses everything first, which is fast and already refuses lone
surrogates and invalid UTF-8. Only when its answer could be wrong (a run of
digits long enough to be an integer it turned into a float) or when it
refused the document (to say precisely why) does the standard parser run.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from ..errors import BadMessageError

#: nesting the envelope may have, counting the envelope itself as 1
MAX_DEPTH = 64
#: integers JSON on the bus may carry: what fits in 64 bits, signed or not
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 64 - 1

_LONG_DIGITS = re.compile(rb"-\d{19}|\d{20}")  # past what orjson reads exactly
_NUL_ESCAPE = b"\\u0000"


def _int(text: str) -> int:
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise BadMessageError("number", f"integer {text[:40]}{'...' if len(text) > 40 else ''} "
                                        f"does not fit in 64 bits")
    return value


def _constant(name: str) -> Any:
    raise BadMessageError("number", f"{name} is not a finite number")


def _stdlib(payload: bytes) -> Any:
    """Parse with the standard library, exactly, turning every refusal into a reason."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessageError("json", f"not UTF-8: {exc}") from exc
    try:
        return json.loads(text, parse_int=_int, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BadMessageError("json", f"not JSON: {exc}") from exc
    except RecursionError as exc:
        raise BadMessageError("depth", "nested too deeply to parse") from exc
    except BadMessageError:
        raise
    except ValueError as exc:  # int() of a number with too many digits
        raise BadMessageError("number", f"a number is out of range: {exc}") from exc


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate"
    return None


def _check_text(value: str, where: str) -> None:
    problem = _bad_text(value)
    if problem is not None:
        raise BadMessageError("text", f"{problem} in {where} {value[:60]!r}")


def check_tree(value: Any, max_depth: int = MAX_DEPTH, *, texts: bool = True) -> None:
    """Walk ``value`` (parsed JSON) without recursion; raise for what it must not hold.

    ``texts`` checks every string and key for NUL and lone surrogates; a
    caller that knows the source could not hold any skips that cost.
    """
    stack: list[tuple[Any, int]] = [([value], 0)]  # the root, as the item of a list
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise BadMessageError("depth", f"nested deeper than {max_depth} levels")
        items: Any = node
        if type(node) is dict:
            if texts:
                for key in node:
                    _check_text(key, "key")
            items = node.values()
        for item in items:
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif kind is float:
                if not math.isfinite(item):
                    raise BadMessageError("number", f"{item} is not a finite number")
            elif kind is str:
                if texts:
                    _check_text(item, "string")
            elif kind is int and not INT_MIN <= item <= INT_MAX:
                raise BadMessageError("number", "an integer does not fit in 64 bits")


def loads_checked(payload: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``payload`` as JSON; raise :class:`BadMessageError` naming what is wrong.

    The reason (:attr:`BadMessageError.reason`) is ``json``, ``depth``,
    ``number`` or ``text``; see the module docstring.
    """
    exact = _LONG_DIGITS.search(payload) is None
    value: Any = None
    if exact:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                raise BadMessageError("depth", f"nested deeper than {max_depth} levels") \
                    from exc
            exact = False  # let the standard parser say precisely what is wrong
    if not exact:
        value = _stdlib(payload)
        check_tree(value, max_depth)  # it lets NaN-free floats overflow, and lone surrogates in
        return value
    # orjson refused lone surrogates already; \u0000 is the one escape left to look at.
    check_tree(value, max_depth, texts=_NUL_ESCAPE in payload)
    return value
