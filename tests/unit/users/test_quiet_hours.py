"""Quiet hours: their time arithmetic (midnight, changes of the clocks) and their checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from notifier.delivery.settings import held_for_quiet, quiet_hours
from notifier.errors import InputError
from notifier.users.quiet import QuietHours
from notifier.users.records import check_user_record


def at(text: str) -> float:
    """Epoch seconds of a UTC time ``YYYY-MM-DD HH:MM``: the injected clock's reading."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def quiet(start: str, end: str, zone: str = "Europe/Prague") -> QuietHours:
    return QuietHours.parse({"start": start, "end": end, "timezone": zone})


NIGHT = quiet("22:00", "07:00")


@pytest.mark.parametrize(("now", "ends"), [
    # Prague is UTC+1 in January: 22:00 local is 21:00 UTC, 07:00 local 06:00 UTC.
    ("2026-01-15 20:59", None),
    ("2026-01-15 21:00", "2026-01-16 06:00"),
    ("2026-01-15 23:30", "2026-01-16 06:00"),  # past midnight local
    ("2026-01-16 02:00", "2026-01-16 06:00"),
    ("2026-01-16 05:59", "2026-01-16 06:00"),
    ("2026-01-16 06:00", None),  # the end is not quiet any more
    ("2026-01-16 12:00", None),
    # Summer: UTC+2.
    ("2026-07-01 19:59", None),
    ("2026-07-01 20:00", "2026-07-02 05:00"),
    ("2026-07-02 04:59", "2026-07-02 05:00"),
    ("2026-07-02 05:00", None),
])
def test_quiet_hours_span_midnight_in_the_users_zone(now: str, ends: str | None) -> None:
    assert NIGHT.active(at(now)) is (ends is not None)
    assert NIGHT.ends(at(now)) == (None if ends is None else at(ends))


def test_quiet_hours_within_one_day() -> None:
    lunch = quiet("12:00", "13:30", "UTC")
    assert not lunch.active(at("2026-03-02 11:59"))
    assert lunch.ends(at("2026-03-02 12:00")) == at("2026-03-02 13:30")
    assert not lunch.active(at("2026-03-02 13:30"))
    assert not lunch.active(at("2026-03-02 23:00"))


def test_the_night_the_clocks_go_forward_is_an_hour_shorter() -> None:
    # 29 March 2026, 02:00 CET becomes 03:00 CEST (01:00 UTC).
    start, end = NIGHT.period(datetime(2026, 3, 28).date())
    assert (start, end) == (at("2026-03-28 21:00"), at("2026-03-29 05:00"))
    assert end - start == 8 * 3600  # nine hours on other nights
    assert NIGHT.ends(at("2026-03-29 00:59")) == at("2026-03-29 05:00")
    assert NIGHT.ends(at("2026-03-29 01:00")) == at("2026-03-29 05:00")  # the jump itself
    assert not NIGHT.active(at("2026-03-29 05:00"))


def test_the_night_the_clocks_go_back_is_an_hour_longer() -> None:
    # 25 October 2026, 03:00 CEST becomes 02:00 CET (01:00 UTC).
    start, end = NIGHT.period(datetime(2026, 10, 24).date())
    assert (start, end) == (at("2026-10-24 20:00"), at("2026-10-25 06:00"))
    assert end - start == 10 * 3600
    assert NIGHT.active(at("2026-10-25 01:30"))  # the second 02:30
    assert not NIGHT.active(at("2026-10-25 06:00"))


def test_an_end_in_the_repeated_hour_is_its_first_occurrence() -> None:
    short = quiet("22:00", "02:30")
    # The first 02:30 is 00:30 UTC; the second 02:00-02:30 (01:00-01:30 UTC) stays loud.
    assert short.ends(at("2026-10-24 23:00")) == at("2026-10-25 00:30")
    assert not short.active(at("2026-10-25 00:30"))
    assert not short.active(at("2026-10-25 01:15"))


def test_a_start_the_clocks_skip_reads_with_the_offset_before_the_jump() -> None:
    early = quiet("02:30", "06:00")
    # 02:30 does not exist on 29 March: it reads as 02:30 CET, which is 03:30 CEST.
    assert not early.active(at("2026-03-29 01:15"))
    assert early.ends(at("2026-03-29 01:30")) == at("2026-03-29 04:00")


def test_other_zones_and_utc() -> None:
    assert quiet("22:00", "07:00", "America/New_York").ends(at("2026-01-16 04:00")) == \
        at("2026-01-16 12:00")
    assert quiet("23:00", "01:00", "UTC").active(at("2026-01-16 00:59"))
    assert quiet("00:00", "23:59", "Asia/Kolkata").active(at("2026-01-16 00:00"))


# -- checks ------------------------------------------------------------------------------------


def record_problems(value: Any) -> str:
    with pytest.raises(InputError) as info:
        check_user_record({"name": "bob", "delivery": {"quiet_hours": value}}, "u.json", 0)
    return str(info.value)


@pytest.mark.parametrize(("value", "message"), [
    ({"start": "7:00", "end": "07:00", "timezone": "UTC"},
     "delivery.quiet_hours.start: '7:00' is not a time of day HH:MM"),
    ({"start": "22:00", "end": "24:00", "timezone": "UTC"},
     "delivery.quiet_hours.end: '24:00' is not a time of day HH:MM, from 00:00 to 23:59"),
    ({"start": 2200, "end": "07:00", "timezone": "UTC"},
     "delivery.quiet_hours.start: must be a time of day such as \"22:00\", not a number"),
    ({"start": "22:00", "end": "07:00", "timezone": "Europe/Praha"},
     "delivery.quiet_hours.timezone: 'Europe/Praha' is not a known time zone "
     "(did you mean 'Europe/Prague'?)"),
    ({"start": "22:00", "end": "07:00", "timezone": "Qwxz"},
     "delivery.quiet_hours.timezone: 'Qwxz' is not a known time zone; use an IANA name"),
    ({"start": "22:00", "end": "07:00", "timezone": "../../etc/passwd"},
     "delivery.quiet_hours.timezone: '../../etc/passwd' is not a time zone name"),
    ({"start": "22:00", "end": "07:00", "timezone": ""},
     "delivery.quiet_hours.timezone: must be a time zone name"),
    ({"start": "22:00", "end": "22:00", "timezone": "UTC"},
     "delivery.quiet_hours.end: must differ from 'start'"),
    ({"start": "22:00", "timezone": "UTC"}, "delivery.quiet_hours.end: is required"),
    ({"start": "22:00", "end": "07:00", "timezone": "UTC", "tz": "UTC"},
     "delivery.quiet_hours: unknown key 'tz'"),
    ("22:00-07:00", "delivery.quiet_hours: must be an object such as"),
])
def test_bad_settings_name_the_field(value: Any, message: str) -> None:
    assert message in record_problems(value)


def test_every_problem_is_reported_at_once() -> None:
    text = record_problems({"start": "25:00", "end": "x", "timezone": "Mars/Olympus"})
    assert "quiet_hours.start:" in text and "quiet_hours.end:" in text
    assert "quiet_hours.timezone:" in text


def test_good_settings_are_kept_and_null_means_none() -> None:
    delivery = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"},
                "webpush": {"digest": {"every": "daily@07:30"}}}
    assert check_user_record({"name": "a", "delivery": delivery})["delivery"] == delivery
    check_user_record({"name": "a", "delivery": {"quiet_hours": None}})


def test_a_stored_setting_that_cannot_be_used_means_no_quiet_hours() -> None:
    seen: list[str] = []
    user = {"name": "a", "delivery": {"quiet_hours": {"start": "22", "end": "07:00"}}}
    assert quiet_hours(user, seen.append) is None
    assert "'delivery.quiet_hours': start:" in seen[0]
    assert "timezone: is required" in seen[0]


@pytest.mark.parametrize(("destination", "severity", "now", "held"), [
    ("email", "info", "2026-01-15 23:00", True),
    ("email", "warning", "2026-01-15 23:00", True),
    ("email", "error", "2026-01-15 23:00", False),  # errors go at once
    ("email", "info", "2026-01-15 12:00", False),  # not quiet now
    ("irc", "debug", "2026-01-15 23:00", True),
    ("webpush", "info", "2026-01-15 23:00", True),
    ("desktop", "info", "2026-01-15 23:00", True),
    ("rss", "info", "2026-01-15 23:00", False),  # a record, read when the user likes
])
def test_what_quiet_hours_hold(destination: str, severity: str, now: str, held: bool) -> None:
    user = {"name": "a", "delivery": {"quiet_hours": NIGHT.as_dict()}}
    assert held_for_quiet(user, destination, severity, at(now)) is held
    assert not held_for_quiet({"name": "a"}, destination, severity, at(now))
