"""Delivery settings read from records that may be bad at rest: never an exception."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from notifier.delivery.settings import (
    DEFAULT_MAX_ITEMS,
    Problems,
    address_for,
    digest_settings,
)


def user(**fields: Any) -> dict[str, Any]:
    return {"name": "mallory", "emails": ["m@example.org", "m2@example.org"],
            "ircnicks": ["mal"], "groups": [], "delivery": None, **fields}


class Told(list[str]):
    def __call__(self, problem: str) -> None:
        self.append(problem)


@pytest.mark.parametrize("record, email, irc, problem", [
    (user(), "m@example.org", "mal", None),
    (user(delivery={"email": {"address": "x@example.org"}, "irc": {"nick": "x"}}),
     "x@example.org", "x", None),
    (user(delivery={"email": {"address": ""}}), "m@example.org", "mal", None),
    (user(delivery="email"), "m@example.org", "mal", "'delivery' is a string, not an object"),
    (user(delivery=[1]), "m@example.org", "mal", "'delivery' is a list"),
    (user(delivery={"email": "a@b", "irc": 5}), "m@example.org", "mal",
     "'delivery.email' is a string, not an object"),
    (user(delivery={"email": {"address": ["a@b"]}}), "m@example.org", "mal",
     "'delivery.email.address' ['a@b'] is not a usable address"),
    (user(delivery={"email": {"address": "a@b\r\nBcc: all@x"}}), "m@example.org", "mal",
     "is not a usable address"),
    (user(emails="m@example.org", ircnicks=None), None, None,
     "'emails' is a string, not a list"),
    (user(emails=[None, 5, "", "ok@example.org"], ircnicks=[]), "ok@example.org", None, None),
    (user(emails=[3], ircnicks={"a": 1}), None, None, "no usable address in 'emails'"),
])
def test_addresses(record: dict[str, Any], email: str | None, irc: str | None,
                   problem: str | None) -> None:
    told = Told()
    assert address_for(record, "email", told) == email
    assert address_for(record, "irc", told) == irc
    assert address_for(record, "rss", told) == "mallory"
    if problem is None:
        assert told == []
    else:
        assert any(problem in p for p in told), told


@pytest.mark.parametrize("digest, expected, problem", [
    (None, None, None),
    ({}, None, None),
    ({"every": "1h"}, {"every": "1h", "max_items": DEFAULT_MAX_ITEMS}, None),
    ({"every": "daily@08:00", "max_items": 5}, {"every": "daily@08:00", "max_items": 5}, None),
    ({}, None, None),
    ({"max_items": 3}, {"every": "1h", "max_items": 3}, None),
    ("1h", None, "is a string, not an object; sent at once instead"),
    ({"every": "1 hour"}, None, "'1 hour' is not a duration"),
    ({"every": "daily@25:00"}, None, "from 00:00 to 23:59"),
    ({"every": "0s"}, None, "must be longer than 0 s"),
    ({"every": 3600}, None, "'every' is a number"),
    ({"every": "1h", "max_items": 0}, {"every": "1h", "max_items": DEFAULT_MAX_ITEMS},
     "'max_items' 0 is not a whole number above 0"),
    ({"every": "1h", "max_items": "5"}, {"every": "1h", "max_items": DEFAULT_MAX_ITEMS},
     "'max_items' '5'"),
    ({"every": "1h", "max_items": True}, {"every": "1h", "max_items": DEFAULT_MAX_ITEMS},
     "'max_items' True"),
    ({"every": "1h", "max_items": 2.5}, {"every": "1h", "max_items": DEFAULT_MAX_ITEMS},
     "'max_items' 2.5"),
])
def test_digests(digest: Any, expected: dict[str, Any] | None, problem: str | None) -> None:
    told = Told()
    record = user(delivery={"email": {"digest": digest}})
    assert digest_settings(record, "email", told) == expected
    assert digest_settings(record, "irc", told) is None
    if problem is None:
        assert told == []
    else:
        assert len(told) == 1 and problem in told[0], told


def test_digest_of_an_unusable_section_is_none() -> None:
    assert digest_settings(user(delivery={"email": "daily"}), "email") is None
    assert digest_settings(user(delivery=7), "email") is None


def test_problems_are_logged_once_per_user_and_problem(caplog: pytest.LogCaptureFixture) -> None:
    problems = Problems(limit=3)
    with caplog.at_level(logging.WARNING, logger="notifier.delivery.settings"):
        for _ in range(50):
            problems.report("mallory", "bad")
            problems.for_user("trudy")("bad")
        problems.report("mallory", "worse")
    assert [r.getMessage() for r in caplog.records] == \
        ["user mallory: bad", "user trudy: bad", "user mallory: worse"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="notifier.delivery.settings"):
        problems.report("eve", "new")  # past the limit, memory starts afresh
        problems.report("mallory", "bad")
    assert len(caplog.records) == 2
