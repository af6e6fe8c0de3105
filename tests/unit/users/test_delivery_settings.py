"""Checking the delivery settings of user records: destinations, addresses, nicks, digests."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.delivery.schedule import Schedule
from notifier.errors import InputError
from notifier.users.records import check_user_record, check_user_records
from notifier.users.settings import MAX_DIGEST_ITEMS, email_problem, nick_problem, parse_every

README_EXAMPLE = {"email": {"address": "alice@example.org",
                            "digest": {"every": "1h", "max_items": 100}},
                  "irc": {"nick": "alice", "digest": None}}


def problems(delivery: Any, **fields: Any) -> str:
    with pytest.raises(InputError) as info:
        check_user_record({"name": "bob", **fields, "delivery": delivery}, "u.json", 2)
    return str(info.value)


@pytest.mark.parametrize("delivery", [
    None,
    {},
    README_EXAMPLE,
    {"email": None, "irc": {}, "rss": {"digest": {"every": "daily@08:00"}},
     "desktop": {"digest": {"max_items": 1}}},
    {"email": {"digest": {"every": "30s", "max_items": MAX_DIGEST_ITEMS}}},
    {"irc": {"nick": "al[1]_^{|}`-x"}, "email": {"address": None}},
    {"rss": {"digest": {"every": "daily@00:00"}}, "desktop": {"digest": {"every": "2w"}}},
])
def test_valid_settings_are_kept_as_given(delivery: Any) -> None:
    record = {"name": "alice", "delivery": delivery}
    assert check_user_record(record) == record


@pytest.mark.parametrize(("delivery", "message"), [
    # The examples, each with the field path
    ({"email": "a@b"},
     "delivery.email: must be an object or null, not string 'a@b'; "
     "for example {\"address\": \"a@b\"}"),
    ({"email": {"digest": {"every": "1 hour"}}},
     "delivery.email.digest.every: '1 hour' is not a duration like 30s, 15m, 1h or 2d, "
     "nor a time of day like daily@08:00 (did you mean '1h'?)"),
    ({"irc": {"digest": {"every": "daily@25:00"}}},
     "delivery.irc.digest.every: 'daily@25:00': the time of day must be HH:MM, "
     "from 00:00 to 23:59"),
    ({"email": {"digest": {"every": "daily@8:00"}}}, "delivery.email.digest.every: "),
    ({"email": {"digest": {"every": "0s"}}}, "'0s' must be longer than 0 s"),
    ({"email": {"digest": {"every": 3600}}},
     "delivery.email.digest.every: must be a string such as \"1h\""),
    ({"email": {"digest": {"max_items": 0}}},
     f"delivery.email.digest.max_items: must be a whole number from 1 to "
     f"{MAX_DIGEST_ITEMS}, not 0"),
    ({"email": {"digest": {"max_items": True}}}, "max_items: must be a whole number"),
    ({"email": {"digest": {"max_items": 2.5}}}, "max_items: must be a whole number"),
    ({"email": {"digest": {"max_items": MAX_DIGEST_ITEMS + 1}}},
     "max_items: must be a whole number"),
    ({"email": {"digest": {}}}, "delivery.email.digest: is empty, which would mean no digest"),
    ({"email": {"digest": "1h"}}, "delivery.email.digest: must be an object such as"),
    # misspelt keys, with the nearest valid word
    ({"emial": {}},
     "delivery: unknown key 'emial' (did you mean 'email'?); "
     "known: email, irc, rss, desktop, webpush, matrix, quiet_hours"),
    ({"email": {"adress": "a@example.org"}},
     "delivery.email: unknown key 'adress' (did you mean 'address'?); known: address, digest"),
    ({"irc": {"nickname": "al"}}, "delivery.irc: unknown key 'nickname' (did you mean 'nick'?)"),
    ({"rss": {"address": "x"}}, "delivery.rss: unknown key 'address'; known: digest"),
    ({"email": {"digest": {"evry": "1h"}}},
     "delivery.email.digest: unknown key 'evry' (did you mean 'every'?); "
     "known: every, max_items"),
    ({"email": {"digest": {"max_item": 5}}},
     "delivery.email.digest: unknown key 'max_item' (did you mean 'max_items'?)"),
    # addresses and nicks
    ({"email": {"address": "alice"}},
     "delivery.email.address: 'alice' is not an email address: it has no '@'"),
    ({"email": {"address": "alice @example.org"}}, "is not an email address: it contains a "),
    ({"email": {"address": ""}}, "delivery.email.address: must be an email address"),
    ({"irc": {"nick": "9lives"}}, "delivery.irc.nick: '9lives' is not an IRC nick"),
    ({"irc": {"nick": "al ice"}}, "delivery.irc.nick: 'al ice' is not an IRC nick"),
    ({"irc": {"nick": ["al"]}}, "delivery.irc.nick: must be an IRC nick (or null for the "),
    ("email", "delivery: must be an object or null, not string"),
])
def test_bad_settings_name_file_record_and_field(delivery: Any, message: str) -> None:
    text = problems(delivery)
    assert text.startswith("u.json: record 2 ('bob'): ")
    assert message in text


def test_every_problem_of_every_record_is_reported_at_once() -> None:
    records = [
        {"name": "alice", "delivery": README_EXAMPLE},
        {"name": "bob", "emails": ["bob@example.org", "not-an-address"],
         "delivery": {"email": {"digest": {"every": "1 hour", "max_items": 0}},
                      "irc": {"nick": "#chan"}}},
        {"name": "carol", "ircnicks": ["carol", "ca rol"]},
    ]
    with pytest.raises(InputError) as info:
        check_user_records(records, "users.json")
    assert str(info.value).splitlines() == [
        "users.json: 2 of 3 records are invalid:",
        "users.json: record 1 ('bob'): emails[1]: 'not-an-address' is not an email address: "
        "it has no '@'",
        "users.json: record 1 ('bob'): delivery.email.digest.every: '1 hour' is not a "
        "duration like 30s, 15m, 1h or 2d, nor a time of day like daily@08:00 "
        "(did you mean '1h'?)",
        f"users.json: record 1 ('bob'): delivery.email.digest.max_items: must be a whole "
        f"number from 1 to {MAX_DIGEST_ITEMS}, not 0",
        "users.json: record 1 ('bob'): delivery.irc.nick: '#chan' is not an IRC nick: a nick "
        "starts with a letter or one of []\\`_^{|} and holds only those, digits and '-'",
        "users.json: record 2 ('carol'): ircnicks[1]: 'ca rol' is not an IRC nick: a nick "
        "starts with a letter or one of []\\`_^{|} and holds only those, digits and '-'",
    ]


@pytest.mark.parametrize("address", [
    "alice@example.org", "a@x", "root@localhost", "zoë@exämple.org", "日本語@exämple.org",
    "first.last+tag@mail.example.co.uk", "o'brien@example.ie", "a@xn--bcher-kva.example",
])
def test_plausible_addresses(address: str) -> None:
    assert email_problem(address) is None


@pytest.mark.parametrize(("address", "why"), [
    ("alice", "no '@'"),
    ("@example.org", "nothing before"),
    ("alice@", "nothing after"),
    ("al ice@example.org", "space"),
    ("alice@exa mple.org", "space"),
    ("alice\x00@example.org", "control"),
    ("<alice@example.org>", "contains one of"),
    ("Alice <alice@example.org>", "space"),
    ("a,b@example.org", "contains one of"),
    (".alice@example.org", "dot"),
    ("al..ice@example.org", "dot"),
    ("alice@example..org", "empty label"),
    ("alice@.example.org", "empty label"),
    ("alice@-example.org", "not a host name"),
    ("alice@exa_mple.org", "not a host name"),
    ("a" * 65 + "@example.org", "64 bytes"),
    ("a@" + "b" * 250 + ".org", "254"),
])
def test_implausible_addresses(address: str, why: str) -> None:
    problem = email_problem(address)
    assert problem is not None and why in problem


@pytest.mark.parametrize(("nick", "valid"), [
    ("alice", True), ("alice_", True), ("[al]", True), ("a-1", True), ("`^{|}\\", True),
    ("1alice", False), ("-alice", False), ("al ice", False), ("al:ice", False),
    ("#chan", False), ("zoë", False), ("a" * 65, False), ("al\r\nQUIT", False),
])
def test_irc_nicks(nick: str, valid: bool) -> None:
    assert (nick_problem(nick) is None) is valid


@pytest.mark.parametrize(("text", "parsed"), [
    ("30s", (30, 0, False)), ("15m", (900, 0, False)), ("1h", (3600, 0, False)),
    (" 2d ", (172800, 0, False)), ("1w", (604800, 0, False)),
    ("daily@08:00", (86400, 8 * 3600, True)), ("daily@23:59", (86400, 86340, True)),
])
def test_every_is_parsed_once_for_records_and_schedules(text: str, parsed: tuple) -> None:
    assert parse_every(text) == parsed
    schedule = Schedule.parse(text)
    assert (schedule.length, schedule.offset, schedule.local) == parsed


@pytest.mark.parametrize("text", ["1 hour", "daily@25:00", "daily@08:60", "weekly", "", "0m"])
def test_what_records_refuse_schedules_refuse(text: str) -> None:
    with pytest.raises(InputError):
        parse_every(text)
    with pytest.raises(InputError, match="digest 'every'"):
        Schedule.parse(text)
