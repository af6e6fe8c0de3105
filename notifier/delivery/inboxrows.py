"""The inbox row of one matched message for one user, as the pipeline records it.

One row per recipient, whatever the destinations of the rules that matched
(see :mod:`notifier.storage.inbox`): what the inbox shows of the message,
taken from its description, and the names of the rules with the matcher's
explanation of each. The explanation is recorded here, at match time, rather
than worked out again when someone asks: it then says what was true when the
message came (the package's owners then, the rule as it was), costs a few
microseconds per recipient, and needs no describer or owner table to answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..bus.envelope import message_id
from ..render.text import single_line
from ..storage.history import message_time
from ..storage.inbox import inbox_row

#: characters of a summary the inbox keeps
TITLE_MAX = 500


def _link(value: Any) -> str | None:
    """An http(s) URL, or None: the inbox hands links to browsers."""
    if not isinstance(value, str) or len(value) > 4000:
        return None
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    return value if scheme in ("http", "https") else None


def _text(value: Any, default: str, limit: int) -> str:
    if value is None or value == "":
        return default
    return single_line(str(value), limit) or default


def inbox_entry(user: str, described: Mapping[str, Any], envelope: dict[str, Any],
                rules: tuple[str, ...], why: Mapping[str, str] | None) -> dict[str, Any]:
    """The inbox row of ``envelope`` (described as ``described``) for ``user``."""
    topic = _text(described.get("topic") or envelope.get("topic"), "", 1000)
    stamp = message_time(envelope)
    return inbox_row(
        user, message_id(envelope), title=_text(described.get("summary"), topic, TITLE_MAX),
        link=_link(described.get("link")), app=_text(described.get("app"), "", 255),
        topic=topic, severity=_text(described.get("severity"), "info", 16),
        timestamp=time.time() if stamp is None else stamp, rules=rules,
        why=dict(why) if why else None)
