"""Checking user records and ownership files."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.errors import InputError
from notifier.inputs import read_json_file
from notifier.users.fasjson import irc_nick, profile_from_fasjson
from notifier.users.ownership import check_ownership_file, ownership_pairs
from notifier.users.records import check_user_record, check_user_records


def test_a_full_record() -> None:
    record = {"name": "alice", "emails": ["a@x", "a@x", "b@x"], "ircnicks": ["al"],
              "groups": [], "delivery": {"email": {"digest": None}}}
    assert check_user_record(record) == {**record, "emails": ["a@x", "b@x"]}


def test_only_keys_given_are_returned() -> None:
    assert check_user_record({"name": "bob", "groups": ["g"]}) == {"name": "bob",
                                                                   "groups": ["g"]}


@pytest.mark.parametrize(("record", "message"), [
    ({"name": "bob", "ircnick": ["b"]},
     r"f\.json: record 3 \('bob'\): unknown key 'ircnick' \(did you mean 'ircnicks'\?\)"),
    ({"name": "bob", "zzz": 1}, r"record 3 \('bob'\): unknown key 'zzz'; known: name"),
    ({"name": "bob", "feed_token": "x"}, r"'feed_token' cannot be set"),
    ({"emails": []}, r"f\.json: record 3: 'name' must be a non-empty string"),
    ({"name": ""}, r"'name' must be a non-empty string"),
    ({"name": " bob"}, r"'name' has leading or trailing spaces"),
    ({"name": "bob", "emails": "b@x"}, r"'emails' must be a list of non-empty strings"),
    ({"name": "bob", "groups": [1]}, r"'groups' must be a list of non-empty strings"),
    ({"name": "bob", "delivery": []}, r"delivery: must be an object or null, not list"),
    (["bob"], r"record 3: a user record must be a JSON object, not list"),
])
def test_bad_records_name_file_record_and_key(record: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_user_record(record, "f.json", 3)


def test_record_lists() -> None:
    with pytest.raises(InputError, match=r"u\.json: expected a JSON list"):
        check_user_records({"name": "a"}, "u.json")
    with pytest.raises(InputError, match=r"u\.json: record 2 \('a'\): the same name as record 0"):
        check_user_records([{"name": "a"}, {"name": "b"}, {"name": "a"}], "u.json")


def test_ownership_file() -> None:
    packages = check_ownership_file(
        {"packages": {"p": {"users": ["b", "a", "a"]}, "q": {"groups": ["g"]}}}, "o.json")
    assert packages == {"p": {"users": ["a", "b"], "groups": []},
                        "q": {"users": [], "groups": ["g"]}}
    assert ownership_pairs(packages) == {("p", "user", "a"), ("p", "user", "b"),
                                         ("q", "group", "g")}


@pytest.mark.parametrize(("data", "message"), [
    ([], r"o\.json: expected a JSON object with a 'packages' key, not list"),
    ({}, r"o\.json: missing the 'packages' object"),
    ({"package": {}}, r"o\.json: unknown key 'package' \(did you mean 'packages'\?\)"),
    ({"packages": []}, r"'packages' must be an object"),
    ({"packages": {"p": 3}}, r"package 'p': expected an object"),
    ({"packages": {"p": {"groups": [""]}}}, r"package 'p': 'groups' must be a list"),
    ({"packages": {"": {}}}, r"package '': not a valid package name"),
])
def test_bad_ownership_files(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_ownership_file(data, "o.json")


def test_read_json_file_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"name": "a",}\n]\n')
    with pytest.raises(InputError, match=rf"{path}:2:16: not valid JSON"):
        read_json_file(str(path))
    with pytest.raises(InputError, match="cannot read"):
        read_json_file(str(tmp_path / "missing.json"))


@pytest.mark.parametrize(("entry", "nick"), [
    ("alice", "alice"),
    ("irc:/alice", "alice"),
    ("irc://irc.libera.chat/alice", "alice"),
    ("matrix://matrix.org/alice", None),
    ("matrix:/alice", None),
])
def test_irc_nicks_from_fasjson(entry: str, nick: str | None) -> None:
    assert irc_nick(entry) == nick


def test_profile_from_fasjson() -> None:
    result = {"username": "alice", "emails": ["a@x"], "ircnicks": ["irc:/al", "matrix:/al",
              "al"], "locale": "en_US", "gpgkeyids": None}
    assert profile_from_fasjson(result, "alice") == {
        "name": "alice", "emails": ["a@x"], "ircnicks": ["al"], "groups": [], "delivery": None}
    assert profile_from_fasjson({"emails": None}, "bob")["name"] == "bob"
