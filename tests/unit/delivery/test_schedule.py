"""Digest schedules: parsing, windows, and when a digest is due."""

from __future__ import annotations

import time

import pytest

from notifier.delivery.schedule import Schedule
from notifier.errors import InputError


@pytest.mark.parametrize("text, length", [("30s", 30), ("15m", 900), ("1h", 3600),
                                          ("2d", 172800)])
def test_durations(text: str, length: int) -> None:
    assert Schedule.parse(text).length == length


def test_daily_at_a_time_of_day() -> None:
    s = Schedule.parse("daily@08:00")
    assert (s.length, s.offset, s.local) == (86400, 8 * 3600, True)
    # 07:59 and 08:00 local time fall in different windows; 08:00 and 23:00 in the same.
    day = time.mktime((2026, 3, 10, 0, 0, 0, 0, 0, -1))
    at = lambda h, m: day + h * 3600 + m * 60  # noqa: E731
    assert s.window(at(7, 59)) + 1 == s.window(at(8, 0)) == s.window(at(23, 0))
    assert s.window_start(s.window(at(9, 0))) == pytest.approx(at(8, 0))


@pytest.mark.parametrize("bad", ["", "1 hour", "daily@25:00", "weekly", "0s", "daily@8:00"])
def test_bad_schedules_name_the_text(bad: str) -> None:
    with pytest.raises(InputError, match="digest 'every'"):
        Schedule.parse(bad)


def test_due_at_the_next_window_boundary() -> None:
    s = Schedule.parse("60s")
    oldest = 6000.0 + 10  # in window 100
    assert not s.due(now=6059.0, oldest=oldest, count=1, max_items=10, last_window=None)
    assert s.due(now=6060.0, oldest=oldest, count=1, max_items=10, last_window=None)


def test_due_early_when_max_items_but_once_per_window() -> None:
    s = Schedule.parse("60s")
    assert s.due(now=6020.0, oldest=6010.0, count=10, max_items=10, last_window=99)
    # A digest already went out in window 100: the rest waits for window 101.
    assert not s.due(now=6030.0, oldest=6025.0, count=10, max_items=10, last_window=100)
    assert s.due(now=6060.0, oldest=6025.0, count=3, max_items=10, last_window=100)
