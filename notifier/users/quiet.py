"""Quiet hours: a nightly stretch of a user's own time in which nothing interrupts them.

The setting, ``delivery.quiet_hours`` of a user record::

    {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}

``start`` and ``end`` are times of day (``HH:MM``) on the user's clock in
``timezone`` (an IANA zone name); an ``end`` earlier than ``start`` means
the next day, so the hours may span midnight. Each local day has one quiet
period, from ``start`` that day to the next ``end``.

Periods are turned into instants per local day, so a change of the clocks
is no trouble: a time that occurs twice (clocks going back) means its first
occurrence, and a time the clocks skip (going forward) reads with the offset
before the change (02:30 on that night is 03:30 after the jump). All the
arithmetic takes ``now`` (seconds since the epoch) from the caller.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ..errors import InputError

#: the keys of the setting
QUIET_KEYS = ("start", "end", "timezone")
_HHMM = re.compile(r"(\d{2}):(\d{2})")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


def parse_time_of_day(text: Any) -> time:
    """``HH:MM`` (00:00 to 23:59) as a time; :class:`InputError` saying what is wrong."""
    if not isinstance(text, str):
        raise InputError(f"must be a time of day such as \"22:00\", not {_kind(text)}")
    match = _HHMM.fullmatch(text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise InputError(f"{text[:40]!r} is not a time of day HH:MM, from 00:00 to 23:59")
    return time(int(match.group(1)), int(match.group(2)))


def parse_zone(name: Any) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Prague``); :class:`InputError` when none such."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"must be a time zone name such as \"Europe/Prague\", not "
                         f"{_kind(name)}")
    stripped = name.strip()
    # Names only: a path (``../x``) or a file name never reaches the zone database.
    if len(stripped) > 64 or not _ZONE_NAME.fullmatch(stripped):
        raise InputError(f"{name[:40]!r} is not a time zone name such as \"Europe/Prague\"")
    try:
        return ZoneInfo(stripped)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        near = difflib.get_close_matches(stripped, sorted(available_timezones()), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else \
            "; use an IANA name such as \"Europe/Prague\" or \"UTC\""
        raise InputError(f"{stripped!r} is not a known time zone{hint}") from None


def _kind(value: Any) -> str:
    return "null" if value is None else {str: "an empty string", bool: "a boolean",
                                         int: "a number", float: "a number", list: "a list",
                                         dict: "an object"}.get(type(value), "that")


@dataclass(frozen=True)
class QuietHours:
    """From ``start`` to ``end`` each day on the clock of ``zone``."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, value: Any) -> QuietHours:
        """Parse the setting; :class:`InputError` lists every problem as ``field: message``."""
        problems: list[str] = []
        check_quiet_hours(value, "", lambda path, message: problems.append(
            f"{path}: {message}" if path else message))
        if problems:
            raise InputError("; ".join(problems))
        return cls(parse_time_of_day(value["start"]), parse_time_of_day(value["end"]),
                   parse_zone(value["timezone"]))

    def _instant(self, day: date, at: time) -> float:
        # fold=0: the first of a repeated time; a skipped one reads with the earlier offset.
        return datetime.combine(day, at, tzinfo=self.zone).timestamp()

    def period(self, day: date) -> tuple[float, float]:
        """The quiet period starting on local ``day``: ``(start, end)`` in epoch seconds."""
        end_day = day + timedelta(days=1) if self.end <= self.start else day
        return self._instant(day, self.start), self._instant(end_day, self.end)

    def current(self, now: float) -> tuple[float, float] | None:
        """The quiet period ``now`` falls in, or None when it is not quiet."""
        today = datetime.fromtimestamp(now, self.zone).date()
        for day in (today - timedelta(days=1), today):
            start, end = self.period(day)
            if start <= now < end:
                return start, end
        return None

    def active(self, now: float) -> bool:
        """Whether ``now`` is within quiet hours."""
        return self.current(now) is not None

    def ends(self, now: float) -> float | None:
        """When the quiet period ``now`` falls in ends (epoch seconds), or None."""
        period = self.current(now)
        return None if period is None else period[1]

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M"),
                "timezone": self.zone.key}


def check_quiet_hours(value: Any, path: str, fail: Any) -> None:
    """Report every problem of a ``quiet_hours`` setting through ``fail(path, message)``.

    Null means none. Paths read ``<path>.start`` and so on (``path`` may be empty).
    """
    if value is None:
        return
    where = f"{path}." if path else ""
    if not isinstance(value, dict):
        fail(path, f"must be an object such as {{\"start\": \"22:00\", \"end\": \"07:00\", "
                   f"\"timezone\": \"Europe/Prague\"}}, or null for none; not {_kind(value)}")
        return
    for key in value:
        if key not in QUIET_KEYS:
            fail(path, f"unknown key {str(key)[:40]!r}; known: {', '.join(QUIET_KEYS)}")
    times: dict[str, time] = {}
    for key in QUIET_KEYS:
        if key not in value:
            fail(f"{where}{key}", "is required")
            continue
        try:
            if key == "timezone":
                parse_zone(value[key])
            else:
                times[key] = parse_time_of_day(value[key])
        except InputError as exc:
            fail(f"{where}{key}", str(exc))
    if len(times) == 2 and times["start"] == times["end"]:
        fail(f"{where}end", "must differ from 'start' (quiet hours cannot last no time, "
                            "nor all day)")
