"""A user's delivery settings, read without trusting the stored record.

Records are checked on the way in, but a record in the database may still
be bad: written by an older version, or edited by hand. Reading one here
never raises. What cannot be used falls back to the default (the first of
``emails`` or ``ircnicks``, delivery at once instead of a digest), or, when
there is nothing to fall back to, leaves that user without that
destination; everyone else is untouched. Each problem is reported through
a :class:`Problems`, which logs it once per user.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InputError
from ..users.quiet import QuietHours
from ..users.settings import QUIET_HOURS
from .schedule import Schedule

log = logging.getLogger(__name__)

#: items in a digest when the settings do not say
DEFAULT_MAX_ITEMS = 100
#: where each destination's address is set, and the list it defaults to the first of
#: (Matrix ids are no field of a user record: ``matrix_ids`` holds those the person
#: verified, added by :func:`notifier.storage.destinations.deliverable`)
_ADDRESSES = {"email": ("address", "emails"), "irc": ("nick", "ircnicks"),
              "matrix": ("user_id", "matrix_ids")}
_UNUSABLE = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS_LENGTH = 320
#: the destinations quiet hours hold back: those that interrupt. The feed and the inbox
#: are records, read when the user chooses; desktop notifications for a user other than
#: ``[dbus] user`` are records of the live stream too (its client decides what to show).
QUIET_DESTINATIONS = frozenset({"email", "irc", "desktop", "webpush", "matrix"})
#: the severity that goes out at once, quiet hours or not
URGENT_SEVERITY = "error"

Report = Callable[[str], None]


def _ignore(problem: str) -> None:
    """Reports nothing (callers that do not log problems)."""


class Problems:
    """Logs each problem of each user's record once, however many messages meet it.

    At most ``limit`` problems are remembered; past that the memory starts afresh.
    """

    def __init__(self, limit: int = 10000):
        self.limit = limit
        self._seen: set[tuple[str, str]] = set()

    def report(self, user: str, problem: str) -> None:
        key = (user, problem)
        if key in self._seen:
            return
        if len(self._seen) >= self.limit:
            self._seen.clear()
        self._seen.add(key)
        log.warning("user %s: %s", user, problem)

    def for_user(self, user: str) -> Report:
        """A report callable for ``user``."""
        return lambda problem: self.report(user, problem)


def _kind(value: Any) -> str:
    return {str: "a string", list: "a list", dict: "an object", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _usable(value: Any) -> bool:
    return (isinstance(value, str) and bool(value.strip()) and len(value) <= _ADDRESS_LENGTH
            and _UNUSABLE.search(value) is None)


def section(user: Mapping[str, Any], destination: str, report: Report = _ignore
            ) -> dict[str, Any]:
    """The user's ``delivery.<destination>`` object; empty when unset or unusable."""
    delivery = user.get("delivery")
    if delivery is None:
        return {}
    if not isinstance(delivery, dict):
        report(f"'delivery' is {_kind(delivery)}, not an object; using the defaults")
        return {}
    settings = delivery.get(destination)
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        report(f"'delivery.{destination}' is {_kind(settings)}, not an object; "
               f"using the defaults for {destination}")
        return {}
    return settings


def address_for(user: Mapping[str, Any], destination: str, report: Report = _ignore
                ) -> str | None:
    """Where ``destination`` reaches ``user``: their setting, else the first email or nick.

    None when there is no usable one. Matrix: ``delivery.matrix.user_id``, else
    the first Matrix id the person verified. Other destinations reach the user by name.
    """
    if destination not in _ADDRESSES:
        name = user.get("name")
        return name if isinstance(name, str) and name else None
    key, listed = _ADDRESSES[destination]
    value = section(user, destination, report).get(key)
    if value not in (None, ""):
        if _usable(value):
            return value
        report(f"'delivery.{destination}.{key}' {value!r:.80} is not a usable address; "
               f"using the first of '{listed}'")
    values = user.get(listed)
    if values is None:
        return None
    if not isinstance(values, list):
        report(f"'{listed}' is {_kind(values)}, not a list; nothing is sent by {destination}")
        return None
    for value in values:
        if _usable(value):
            return value
    if values:
        report(f"no usable address in '{listed}'; nothing is sent by {destination}")
    return None


def digest_settings(user: Mapping[str, Any], destination: str, report: Report = _ignore
                    ) -> dict[str, Any] | None:
    """The user's digest settings for ``destination``, usable as they are, or None.

    Returns ``{"every": text, "max_items": n}``. A digest whose ``every``
    does not parse is None (notifications go at once); a bad ``max_items``
    becomes :data:`DEFAULT_MAX_ITEMS`.
    """
    digest = section(user, destination, report).get("digest")
    if not digest:
        return None
    where = f"'delivery.{destination}.digest'"
    if not isinstance(digest, dict):
        report(f"{where} is {_kind(digest)}, not an object; sent at once instead")
        return None
    every = digest.get("every", "1h")
    if not isinstance(every, str):
        report(f"{where}: 'every' is {_kind(every)}, not a text like 1h or daily@08:00; "
               f"sent at once instead")
        return None
    try:
        Schedule.parse(every)
    except InputError as exc:
        report(f"{where}: {exc}; sent at once instead")
        return None
    max_items = digest.get("max_items")
    if max_items is None:
        max_items = DEFAULT_MAX_ITEMS
    elif isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        report(f"{where}: 'max_items' {max_items!r:.40} is not a whole number above 0; "
               f"using {DEFAULT_MAX_ITEMS}")
        max_items = DEFAULT_MAX_ITEMS
    return {"every": every, "max_items": max_items}


def quiet_hours(user: Mapping[str, Any], report: Report = _ignore) -> QuietHours | None:
    """The user's quiet hours, or None (none set, or a setting that cannot be used)."""
    delivery = user.get("delivery")
    if not isinstance(delivery, dict) or delivery.get(QUIET_HOURS) is None:
        return None
    try:
        return QuietHours.parse(delivery[QUIET_HOURS])
    except InputError as exc:
        report(f"'delivery.{QUIET_HOURS}': {exc}; no quiet hours")
        return None


def held_for_quiet(user: Mapping[str, Any], destination: str, severity: str, now: float,
                   report: Report = _ignore) -> bool:
    """Whether a notification of ``severity`` to ``destination`` waits for quiet hours to end.

    Only at ``now`` within the user's quiet hours, only the destinations of
    :data:`QUIET_DESTINATIONS`, and never an error.
    """
    if destination not in QUIET_DESTINATIONS or severity == URGENT_SEVERITY:
        return False
    quiet = quiet_hours(user, report)
    return quiet is not None and quiet.active(now)
