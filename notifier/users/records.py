"""User records: what a user is, and checking records read from files.

A record is a JSON object::

    {"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice"],
     "groups": ["packager"], "delivery": {...}}

``name`` is required. ``emails``, ``ircnicks`` and ``groups`` are lists of
strings; ``delivery`` is an object of per-user delivery settings (or null),
kept as given. Stored users also have a ``feed_token``, which is generated
and never imported.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import InputError

LIST_FIELDS = ("emails", "ircnicks", "groups")
FIELDS = ("name", *LIST_FIELDS, "delivery")
#: fields a stored user has beyond what can be imported
STORED_ONLY = ("feed_token",)


def did_you_mean(key: str, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    near = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _where(source: str, index: int | None, record: Any) -> str:
    where = source
    if index is not None:
        where += f": record {index}"
    if isinstance(record, dict) and isinstance(record.get("name"), str):
        where += f" ({record['name']!r})"
    return where


def check_user_record(record: Any, source: str = "<record>",
                      index: int | None = None) -> dict[str, Any]:
    """Check one user record and return a copy with only the keys it had.

    Raises :class:`InputError` naming ``source``, the record's index and
    name, and the key at fault.
    """
    where = _where(source, index, record)
    if not isinstance(record, dict):
        raise InputError(f"{where}: a user record must be a JSON object, "
                         f"not {type(record).__name__}")
    for key in record:
        if key in STORED_ONLY:
            raise InputError(f"{where}: '{key}' cannot be set; it is generated when the "
                             f"user is created")
        if key not in FIELDS:
            raise InputError(f"{where}: unknown key '{key}'{did_you_mean(key, FIELDS)}; "
                             f"known keys: {', '.join(FIELDS)}")
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: 'name' must be a non-empty string")
    if name != name.strip():
        raise InputError(f"{where}: 'name' has leading or trailing spaces")
    out: dict[str, Any] = {"name": name}
    for key in LIST_FIELDS:
        if key not in record:
            continue
        value = record[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"{where}: '{key}' must be a list of non-empty strings")
        out[key] = list(dict.fromkeys(value))  # drop repeats, keep order
    if "delivery" in record:
        delivery = record["delivery"]
        if delivery is not None and not isinstance(delivery, dict):
            raise InputError(f"{where}: 'delivery' must be an object or null, "
                             f"not {type(delivery).__name__}")
        out["delivery"] = delivery
    return out


def check_user_records(records: Any, source: str = "<records>") -> list[dict[str, Any]]:
    """Check a list of user records (see :func:`check_user_record`); names must be unique."""
    if not isinstance(records, list):
        raise InputError(f"{source}: expected a JSON list of user records, "
                         f"not {type(records).__name__}")
    checked = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        rec = check_user_record(record, source, index)
        if rec["name"] in seen:
            raise InputError(f"{_where(source, index, rec)}: the same name as record "
                             f"{seen[rec['name']]}")
        seen[rec["name"]] = index
        checked.append(rec)
    return checked
