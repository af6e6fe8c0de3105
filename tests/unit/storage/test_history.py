"""Message ids, times and topic globs of stored messages."""

from __future__ import annotations

import pytest

from notifier.bus.envelope import message_id
from notifier.storage.engine import json_dumps, json_loads, redact
from notifier.storage.history import glob_to_like, message_time, topic_matches


def test_message_id_prefers_msg_id_then_id() -> None:
    assert message_id({"msg_id": "2024-abc", "id": "x"}) == "2024-abc"
    assert message_id({"id": "uuid"}) == "uuid"
    assert message_id({"msg_id": "", "id": "uuid"}) == "uuid"


def test_content_ids_are_stable_and_ignore_key_order() -> None:
    a = message_id({"topic": "t", "msg": {"a": 1, "b": "ü"}})
    b = message_id({"msg": {"b": "ü", "a": 1}, "topic": "t"})
    assert a == b
    assert a.startswith("sha256:") and len(a) == len("sha256:") + 64
    assert a != message_id({"topic": "t", "msg": {"a": 2, "b": "ü"}})
    # A non-string id does not count as an id.
    assert message_id({"topic": "t", "id": 5}).startswith("sha256:")


@pytest.mark.parametrize(("envelope", "expected"), [
    ({"timestamp": 1700000000}, 1700000000.0),
    ({"timestamp": 1700000000.5}, 1700000000.5),
    ({"timestamp": "1700000000"}, 1700000000.0),
    ({"timestamp": "2023-11-14T22:13:20+00:00"}, 1700000000.0),
    ({"timestamp": "2023-11-14T22:13:20"}, 1700000000.0),
    ({"headers": {"sent-at": "2023-11-14T22:13:20Z"}}, 1700000000.0),
    ({"headers": {"sent-at": "2023-11-14T23:13:20+01:00"}}, 1700000000.0),
    ({"timestamp": True}, None),
    ({"timestamp": "yesterday"}, None),
    ({"timestamp": float("nan")}, None),
    ({"headers": "nope"}, None),
    ({}, None),
])
def test_message_time(envelope: dict, expected: float | None) -> None:
    assert message_time(envelope) == expected


@pytest.mark.parametrize(("glob", "like", "exact"), [
    ("org.*.git", "org.%.git", True),
    ("a?c", "a_c", True),
    ("100%_done\\", "100\\%\\_done\\\\", True),
    ("org.[ab].x*", "org.%", False),
])
def test_glob_to_like(glob: str, like: str, exact: bool) -> None:
    assert glob_to_like(glob) == (like, exact)


def test_topic_matching_is_case_sensitive() -> None:
    assert topic_matches("org.Git", "org.[Gg]it")
    assert not topic_matches("org.Git", "org.git")


def test_json_columns_keep_big_integers_and_unicode() -> None:
    value = {"big": 2**70, "neg": -(2**64), "u": "☃", "f": 0.1, "n": None}
    assert json_loads(json_dumps(value)) == value
    assert isinstance(json_loads(json_dumps(value))["big"], int)
    assert json_loads(b'{"a": 123456789012345678901234567890}') == {
        "a": 123456789012345678901234567890}
    with pytest.raises(ValueError, match="line 1 column 7"):
        json_loads('{"a": }')


def test_redact_hides_passwords() -> None:
    assert redact("postgresql+psycopg://bob:s3cret@db/notifier") == \
        "postgresql+psycopg://bob:***@db/notifier"
    assert "s3cret" not in redact("weird://bob:s3cret@host:notaport/x y")
    assert redact("sqlite:////var/lib/n.db") == "sqlite:////var/lib/n.db"
