"""Per-user delivery settings: where each destination reaches a user, and digests.

The ``delivery`` object of a user record::

    {"email": {"address": "alice@example.org",
               "digest": {"every": "1h", "max_items": 100}},
     "irc": {"nick": "alice", "digest": null},
     "rss": {"digest": {"every": "daily@08:00"}},
     "desktop": null,
     "webpush": {"digest": {"every": "15m"}},
     "matrix": {"user_id": "@alice:example.org", "digest": null},
     "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}}

Each destination is optional and may be null. ``address`` (email) and
``nick`` (irc) replace the first of the user's ``emails`` or ``ircnicks``;
``user_id`` (matrix, ``@name:server``) is the one address Matrix reaches.
``digest`` holds notifications back and sends them together: ``every`` is a
duration (``30s``, ``15m``, ``1h``, ``2d``) or a local time of day
(``daily@08:00``), default ``1h``; ``max_items`` (1 to
:data:`MAX_DIGEST_ITEMS`, default 100) sends the digest early once that many
are waiting. Null means no digest. This module is the one parser of
``every`` (:func:`parse_every`); the digest scheduler uses it too.
``quiet_hours`` (see :mod:`notifier.users.quiet`) holds what would interrupt
the user at night and sends it as one digest per destination when they end.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..config import parse_duration
from ..errors import InputError
from .quiet import check_quiet_hours

#: destination -> the keys its settings take
DESTINATION_KEYS: dict[str, tuple[str, ...]] = {
    "email": ("address", "digest"),
    "irc": ("nick", "digest"),
    "rss": ("digest",),
    "desktop": ("digest",),
    "webpush": ("digest",),
    "matrix": ("user_id", "digest"),
}
#: the keys of ``delivery`` beyond the destinations
QUIET_HOURS = "quiet_hours"
DELIVERY_KEYS = (*DESTINATION_KEYS, QUIET_HOURS)
DIGEST_KEYS = ("every", "max_items")
#: the most notifications one digest may hold
MAX_DIGEST_ITEMS = 1000
#: what an IRC nick may look like: RFC 2812 letters, digits and specials
IRC_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
#: a Matrix user id: ``@localpart:server`` (the server may have a port)
MATRIX_USER_ID = re.compile(r"@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?|"
                            r"@[a-z0-9._=/+-]+:\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
#: the Matrix spec's limit on a user id
MAX_MATRIX_ID_CHARS = 255
#: longer than any IRC network lets a nick be
MAX_NICK_CHARS = 64

_DAILY = re.compile(r"daily@(\d{1,2}):(\d{2})")
_WORDY = re.compile(r"(\d+)\s*(sec|second|min|minute|hour|hr|day|week)s?", re.IGNORECASE)
# Characters that never occur in a plain address outside of quotes.
_ADDRESS_SPECIALS = frozenset('"(),:;<>@[\\]')


def hint(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def parse_every(text: str) -> tuple[int, int, bool]:
    """Parse a digest's ``every``: ``(window seconds, offset into the day, local time)``.

    ``30s``, ``15m``, ``1h``, ``2d``, ``1w`` give fixed windows counted from
    the epoch; ``daily@HH:MM`` gives days starting at that local time.
    Raises :class:`InputError` saying what is wrong with ``text``.
    """
    if not isinstance(text, str):
        raise InputError(f"must be a string such as \"1h\" or \"daily@08:00\", "
                         f"not {type(text).__name__}")
    stripped = text.strip()
    daily = _DAILY.fullmatch(stripped)
    if daily:
        hours, minutes = int(daily.group(1)), int(daily.group(2))
        if len(daily.group(1)) != 2 or hours > 23 or minutes > 59:
            raise InputError(f"{text!r}: the time of day must be HH:MM, from 00:00 to 23:59")
        return 86400, hours * 3600 + minutes * 60, True
    try:
        seconds = parse_duration(text)
    except ValueError:
        wordy = _WORDY.fullmatch(stripped)
        suggestion = f" (did you mean '{wordy.group(1)}{wordy.group(2)[0].lower()}'?)" \
            if wordy else ""
        raise InputError(f"{text!r} is not a duration like 30s, 15m, 1h or 2d, nor a time "
                         f"of day like daily@08:00{suggestion}") from None
    if seconds <= 0:
        raise InputError(f"{text!r} must be longer than 0 s")
    return seconds, 0, False


def email_problem(value: str) -> str | None:
    """Why ``value`` is not a plausible email address (``local@domain``), or None."""
    local, at, domain = value.rpartition("@")
    if not at:
        return "it has no '@'"
    if not local:
        return "nothing before the '@'"
    if not domain:
        return "nothing after the '@'"
    if len(value) > 254:
        return "longer than 254 characters"
    if not value.isprintable() or any(c.isspace() for c in value):
        return "it contains a space or a control character"
    if len(local.encode("utf-8")) > 64:
        return "the part before the '@' is longer than 64 bytes"
    if _ADDRESS_SPECIALS.intersection(local):
        return f"the part before the '@' contains one of {''.join(sorted(_ADDRESS_SPECIALS))}"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before the '@' has a dot at its start or end, or two in a row"
    for label in domain.split("."):
        if not label:
            return f"the domain {domain!r} has an empty label"
        if len(label) > 63 or label[0] == "-" or label[-1] == "-" or \
                not all(c.isalnum() or c == "-" for c in label):
            return f"the domain {domain!r} is not a host name"
    return None


def nick_problem(value: str) -> str | None:
    """Why ``value`` is not a valid IRC nick, or None."""
    if len(value) > MAX_NICK_CHARS:
        return f"longer than {MAX_NICK_CHARS} characters"
    if not IRC_NICK.fullmatch(value):
        return ("a nick starts with a letter or one of []\\`_^{|} and holds only those, "
                "digits and '-'")
    return None


def matrix_id_problem(value: str) -> str | None:
    """Why ``value`` is not a Matrix user id such as ``@alice:example.org``, or None."""
    if len(value) > MAX_MATRIX_ID_CHARS:
        return f"longer than {MAX_MATRIX_ID_CHARS} characters"
    if not MATRIX_USER_ID.fullmatch(value):
        return ("a Matrix user id reads @name:server, the name in lower-case letters, "
                "digits and ._=/+-")
    return None


def type_name(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:57] + "..."


#: reports one problem: the field path (may be empty) and the message
Fail = Callable[[str, str], None]


def unknown_keys(data: dict[str, Any], known: tuple[str, ...], path: str, fail: Fail,
                 what: str = "key") -> None:
    """Report each key of ``data`` not in ``known``, with the nearest known one."""
    for key in data:
        if key not in known:
            fail(path, f"unknown {what} {shown(key)}{hint(str(key), known)}; "
                       f"known: {', '.join(known)}")


def check_delivery(delivery: Any, fail: Fail) -> None:
    """Report every problem of a ``delivery`` object through ``fail(path, message)``."""
    if delivery is None:
        return
    if not isinstance(delivery, dict):
        fail("delivery", f"must be an object or null, not {type_name(delivery)}")
        return
    unknown_keys(delivery, DELIVERY_KEYS, "delivery", fail)
    check_quiet_hours(delivery.get(QUIET_HOURS), f"delivery.{QUIET_HOURS}", fail)
    for destination, keys in DESTINATION_KEYS.items():
        settings = delivery.get(destination)
        path = f"delivery.{destination}"
        if settings is None:
            continue
        if not isinstance(settings, dict):
            example = ""
            if isinstance(settings, str) and keys[0] != "digest":
                example = f'; for example {{"{keys[0]}": "{settings}"}}'
            fail(path, f"must be an object or null, not {type_name(settings)} "
                       f"{shown(settings)}{example}")
            continue
        unknown_keys(settings, keys, path, fail)
        if "address" in keys:
            _check_address(settings.get("address"), f"{path}.address", email_problem,
                           "an email address", fail)
        if "nick" in keys:
            _check_address(settings.get("nick"), f"{path}.nick", nick_problem,
                           "an IRC nick", fail)
        if "user_id" in keys:
            _check_address(settings.get("user_id"), f"{path}.user_id", matrix_id_problem,
                           "a Matrix user id", fail)
        check_digest(settings.get("digest"), f"{path}.digest", fail)


def _check_address(value: Any, path: str, problem: Callable[[str], str | None], what: str,
                   fail: Fail) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        fail(path, f"must be {what} (or null for the default), not {type_name(value)} "
                   f"{shown(value)}")
        return
    why = problem(value)
    if why:
        fail(path, f"{shown(value)} is not {what}: {why}")


def check_digest(digest: Any, path: str, fail: Fail) -> None:
    """Report the problems of one ``digest`` setting (null means no digest)."""
    if digest is None:
        return
    if not isinstance(digest, dict):
        fail(path, f"must be an object such as {{\"every\": \"1h\"}}, or null for no digest; "
                   f"not {type_name(digest)} {shown(digest)}")
        return
    if not digest:
        fail(path, "is empty, which would mean no digest; give \"every\" (and \"max_items\"), "
                   "or null for no digest")
        return
    unknown_keys(digest, DIGEST_KEYS, path, fail)
    if "every" in digest:
        try:
            parse_every(digest["every"])
        except InputError as exc:
            fail(f"{path}.every", str(exc))
    if "max_items" in digest:
        value = digest["max_items"]
        if type(value) is not int or not 1 <= value <= MAX_DIGEST_ITEMS:
            fail(f"{path}.max_items", f"must be a whole number from 1 to {MAX_DIGEST_ITEMS}, "
                                      f"not {shown(value)}")
