"""User records: what a user is, and checking records on every way in.

A record is a JSON object::

    {"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice"],
     "groups": ["packager"], "delivery": {...}}

``name`` is required. ``emails`` are email addresses, ``ircnicks`` IRC nicks
and ``groups`` group names, each a list of strings; ``delivery`` holds the
per-user delivery settings (see :mod:`notifier.users.settings`), or null.
Stored users also have a ``feed_token``, which is generated and never
imported.

Every problem of a record is reported at once, as rules are: the source (a
file name), the record's index and name, the field path (such as
``delivery.email.digest.every``) and, for a misspelt key, the nearest valid
one.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .settings import (
    check_delivery,
    email_problem,
    hint,
    nick_problem,
    shown,
    type_name,
    unknown_keys,
)

LIST_FIELDS = ("emails", "ircnicks", "groups")
FIELDS = ("name", *LIST_FIELDS, "delivery")
#: fields a stored user has beyond what can be imported
STORED_ONLY = ("feed_token",)
#: how each list's items are checked: (what an item is, why it is not one, or None)
_ITEM_CHECKS = {"emails": ("an email address", email_problem),
                "ircnicks": ("an IRC nick", nick_problem)}


def did_you_mean(key: str, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    return hint(key, choices)


def _where(source: str, index: int | None, record: Any) -> str:
    where = source
    if index is not None:
        where += f": record {index}"
    if isinstance(record, dict) and isinstance(record.get("name"), str):
        where += f" ({record['name']!r})"
    return where


def user_record_problems(record: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """Check one record: ``(the checked copy, [])``, or ``(None, problems)``.

    Each problem reads ``field: message`` (or only the message for the
    record as a whole); the copy has only the keys the record had, with
    repeated list items dropped.
    """
    problems: list[str] = []

    def fail(path: str, message: str) -> None:
        problems.append(f"{path}: {message}" if path else message)

    if not isinstance(record, dict):
        return None, [f"a user record must be a JSON object, not {type_name(record)}"]
    for key in record:
        if key in STORED_ONLY:
            fail("", f"'{key}' cannot be set; it is generated when the user is created")
    unknown_keys({k: v for k, v in record.items() if k not in STORED_ONLY}, FIELDS, "", fail)
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        fail("", "'name' must be a non-empty string")
    elif name != name.strip():
        fail("", "'name' has leading or trailing spaces")
    out: dict[str, Any] = {"name": name}
    for key in LIST_FIELDS:
        if key not in record:
            continue
        value = record[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            fail("", f"'{key}' must be a list of non-empty strings")
            continue
        if key in _ITEM_CHECKS:
            what, problem = _ITEM_CHECKS[key]
            for i, item in enumerate(value):
                why = problem(item)
                if why:
                    fail(f"{key}[{i}]", f"{shown(item)} is not {what}: {why}")
        out[key] = list(dict.fromkeys(value))  # drop repeats, keep order
    if "delivery" in record:
        check_delivery(record["delivery"], fail)
        out["delivery"] = record["delivery"]
    return (None, problems) if problems else (out, [])


def check_user_record(record: Any, source: str = "<record>",
                      index: int | None = None) -> dict[str, Any]:
    """Check one user record and return a copy with only the keys it had.

    Raises :class:`InputError` listing every problem, one per line, each
    naming ``source``, the record's index and name, and the field at fault.
    """
    checked, problems = user_record_problems(record)
    if problems:
        where = _where(source, index, record)
        raise InputError("\n".join(f"{where}: {p}" for p in problems))
    assert checked is not None
    return checked


def check_user_records(records: Any, source: str = "<records>") -> list[dict[str, Any]]:
    """Check a list of user records (see :func:`check_user_record`); names must be unique.

    All or nothing: one :class:`InputError` lists every problem of every bad
    record.
    """
    if not isinstance(records, list):
        raise InputError(f"{source}: expected a JSON list of user records, "
                         f"not {type_name(records)}")
    checked = []
    lines: list[str] = []
    bad = 0
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        rec, problems = user_record_problems(record)
        if rec is not None and rec["name"] in seen:
            problems = [f"the same name as record {seen[rec['name']]}"]
        if problems:
            bad += 1
            where = _where(source, index, record)
            lines.extend(f"{where}: {p}" for p in problems)
            continue
        assert rec is not None
        seen[rec["name"]] = index
        checked.append(rec)
    if lines:
        if len(records) > 1:
            noun = "record is" if bad == 1 else "records are"
            lines.insert(0, f"{source}: {bad} of {len(records)} {noun} invalid:")
        raise InputError("\n".join(lines))
    return checked
