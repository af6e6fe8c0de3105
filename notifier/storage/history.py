"""Message history helpers: ids, times and topic globs for stored envelopes.

Three shapes of message are stored as given:

- fedmsg envelopes: ``{"topic", "msg", "msg_id", "timestamp", ...}``;
- fedora-messaging records (``fedora-messaging record``):
  ``{"topic", "headers", "id", "body", ...}``;
- bare ``{"topic", "msg"}`` objects.
"""

from __future__ import annotations

import fnmatch
import math
from datetime import UTC, datetime
from typing import Any


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return number if math.isfinite(number) else None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    return None


def message_time(envelope: dict[str, Any]) -> float | None:
    """Seconds since the epoch when the message was sent, if it says.

    Looks at ``timestamp`` (a number, or an ISO 8601 string), then at the
    fedora-messaging ``headers["sent-at"]``.
    """
    found = _seconds(envelope.get("timestamp"))
    if found is None:
        headers = envelope.get("headers")
        if isinstance(headers, dict):
            found = _seconds(headers.get("sent-at"))
    return found


def glob_to_like(glob: str) -> tuple[str, bool]:
    """Translate an fnmatch glob into a SQL ``LIKE`` pattern with ``\\`` as escape.

    Returns ``(pattern, exact)``. ``exact`` is false when the glob has a
    ``[...]`` class, which LIKE cannot express: the pattern then matches a
    superset and the caller must check each topic with :func:`topic_matches`.
    """
    out = []
    exact = True
    for char in glob:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[":
            # Everything from here on is only approximated.
            out.append("%")
            exact = False
            break
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out), exact


def topic_matches(topic: str, glob: str) -> bool:
    """Whether ``topic`` matches the fnmatch ``glob``, case-sensitively."""
    return fnmatch.fnmatchcase(topic, glob)
