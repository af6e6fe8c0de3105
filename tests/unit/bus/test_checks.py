"""The checks at the boundary: every reason a received message is rejected, and normalising."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.bus.checks import (
    MAX_TIMESTAMP,
    REASONS,
    Limits,
    check_fields,
    check_received,
    normalise,
)
from notifier.bus.decoding import loads_checked
from notifier.bus.envelope import EnvelopeBuilder, decode_envelope, message_id
from notifier.errors import BadMessageError

TOPIC = b"org.fedoraproject.dev.git.repo.update"


DEFAULT = Limits()


def reason(payload: bytes, topic: bytes = TOPIC, limits: Limits = DEFAULT) -> str:
    with pytest.raises(BadMessageError) as info:
        check_received(topic, payload, limits)
    assert info.value.reason in REASONS
    assert isinstance(info.value, ValueError)  # what decode_envelope's callers catch
    return info.value.reason


def good(**fields: Any) -> bytes:
    envelope = {"msg": {"a": 1}, "msg_id": "2026-x", "timestamp": 1_700_000_000, "i": 1,
                "topic": TOPIC.decode(), "username": "alice"}
    envelope.update(fields)
    return json.dumps({k: v for k, v in envelope.items() if v is not ...}).encode()


# -- sizes ---------------------------------------------------------------------

def test_sizes() -> None:
    limits = Limits(max_message_bytes=100)
    assert reason(b'{"msg": "' + b"x" * 100 + b'"}', limits=limits) == "too-big"
    assert check_received(TOPIC, b'{"msg": "' + b"x" * 80 + b'"}', limits)["msg"] == "x" * 80
    assert reason(good(), topic=b"t" * 1025) == "topic"
    assert reason(good(topic="t" * 1025)) == "topic"
    assert reason(good(topic="é" * 513)) == "topic"  # bytes, not characters
    assert check_received(b"t" * 1024, good(topic=...))["topic"] == "t" * 1024


# -- JSON: depth, numbers, text --------------------------------------------------

@pytest.mark.parametrize("depth", [1025, 100_000])
def test_deep_nesting_is_a_reason_not_a_recursion_error(depth: int) -> None:
    assert reason(b"[" * depth + b"]" * depth) == "depth"
    # Past orjson's limit, and also with a long number that sends it to the exact parser.
    assert reason(b"[" * depth + b"12345678901234567890" + b"]" * depth) == "depth"
    with pytest.raises(BadMessageError):
        decode_envelope(TOPIC, b'{"msg": ' + b"[" * depth + b"]" * depth + b"}")


def test_nesting_is_bounded_at_64_levels_counting_the_envelope() -> None:
    def nested(levels: int) -> bytes:  # the envelope is level 1
        return b'{"msg": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    assert check_received(TOPIC, nested(64))["msg"] == json.loads(nested(64))["msg"]
    assert reason(nested(65)) == "depth"
    assert reason(b'{"msg": ' + b'{"a": ' * 64 + b"1" + b"}" * 64 + b"}") == "depth"
    assert check_received(TOPIC, nested(65), Limits(max_depth=65))["msg"] == \
        json.loads(nested(65))["msg"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_non_finite_numbers(literal: bytes) -> None:
    assert reason(b'{"msg": {"x": ' + literal + b"}}") == "number"


@pytest.mark.parametrize("number, ok", [
    (str(2 ** 64 - 1), True), (str(-(2 ** 63)), True), (str(2 ** 64), False),
    (str(-(2 ** 63) - 1), False), ("1" + "0" * 30, False), ("1" + "0" * 5000, False),
], ids=["max", "min", "max+1", "min-1", "1e30", "5001-digits"])
def test_integers_must_fit_in_64_bits(number: str, ok: bool) -> None:
    payload = b'{"msg": {"n": ' + number.encode() + b"}}"
    if ok:
        assert check_received(TOPIC, payload)["msg"]["n"] == int(number)  # exact, not a float
    else:
        assert reason(payload) == "number"


def test_long_digit_runs_in_strings_are_fine() -> None:
    envelope = check_received(TOPIC, b'{"msg": {"id": "123456789012345678901234567890"}}')
    assert envelope["msg"]["id"] == "123456789012345678901234567890"


@pytest.mark.parametrize("payload", [
    b'{"msg": {"x": "a\\u0000b"}}',
    b'{"msg": {"a\\u0000": 1}}',
    b'{"msg": {"x": "\\ud800"}}',
    b'{"msg": {"x": "\\udfff and more"}}',
    b'{"msg": {"\\ud83d": 1}}',
    # a surrogate-only escape, with a long number that sends it to the exact parser
    b'{"msg": {"x": "\\ud800", "n": 12345678901234567890}}',
])
def test_nul_and_lone_surrogates_never_pass(payload: bytes) -> None:
    assert reason(payload) == "text"


def test_escaped_text_that_only_looks_like_nul_or_surrogates_passes() -> None:
    envelope = check_received(TOPIC, rb'{"msg": {"x": "\\u0000 \\ud800", "y": "\ud83d\ude00"}}')
    assert envelope["msg"] == {"x": "\\u0000 \\ud800", "y": "😀"}


@pytest.mark.parametrize("payload", [
    b"\xff\xfe{}", "{}".encode("utf-16"), b'{"msg": "\xed\xa0\x80"}', b"{nope", b"",
])
def test_not_json_or_not_utf8(payload: bytes) -> None:
    assert reason(payload) == "json"


@pytest.mark.parametrize("payload", [b"[1]", b'"text"', b"1", b"null"])
def test_the_envelope_must_be_an_object(payload: bytes) -> None:
    with pytest.raises(BadMessageError, match="not a JSON object"):
        check_received(TOPIC, payload)


def test_loads_checked_reasons_name_what_was_found() -> None:
    with pytest.raises(BadMessageError, match="NaN is not a finite number"):
        loads_checked(b"[NaN]")
    with pytest.raises(BadMessageError, match="does not fit in 64 bits"):
        loads_checked(b"[18446744073709551616]")
    with pytest.raises(BadMessageError, match="lone surrogate"):
        loads_checked(b'["\\ud800"]')
    with pytest.raises(BadMessageError, match="not JSON.*line 1 column 2"):
        loads_checked(b"[x]")
    assert loads_checked(b'{"a": [1.5, -0.0, true, null]}') == {"a": [1.5, -0.0, True, None]}


# -- the topic frame -------------------------------------------------------------

def test_the_topic_frame_is_used_only_when_the_envelope_has_no_topic() -> None:
    assert check_received(b"from.the.frame", b'{"msg": {}}')["topic"] == "from.the.frame"
    assert check_received(b"\xff", good())["topic"] == TOPIC.decode()
    assert reason(b'{"msg": {}}', topic=b"\xff\xfe") == "topic"
    assert reason(b'{"msg": {}}', topic=b"a\x00b") == "topic"
    assert reason(b'{"msg": {}}', topic=b"") == "field"


# -- fields ----------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"topic": 5}, {"topic": ""}, {"topic": ["a"]},
    {"msg": ...},
    {"msg_id": 42}, {"msg_id": ["x"]}, {"msg_id": "x" * 256}, {"id": 7},
    {"timestamp": "2024-01-01"}, {"timestamp": True}, {"timestamp": [1]},
    {"timestamp": 1e20}, {"timestamp": -1e18}, {"timestamp": -1}, {"timestamp": MAX_TIMESTAMP + 1},
    {"i": "1"}, {"i": 1.5}, {"i": False},
    {"username": 5}, {"username": {"name": "x"}},
    {"headers": "none"}, {"headers": [1]},
    {"crypto": 1}, {"signature": ["x"]}, {"certificate": {}},
])
def test_wrong_fields(fields: dict[str, Any]) -> None:
    assert reason(good(**fields)) == "field"


def test_a_field_error_names_the_field_and_carries_the_msg_id() -> None:
    with pytest.raises(BadMessageError) as info:
        check_received(TOPIC, good(timestamp=1e20, msg_id="2026-bad"))
    assert info.value.msg_id == "2026-bad"
    assert "'timestamp' 1e+20 is not between 1970 and 2100" in str(info.value)


@pytest.mark.parametrize("fields", [
    {"timestamp": 0}, {"timestamp": MAX_TIMESTAMP}, {"timestamp": 1.7e9}, {"timestamp": None},
    {"timestamp": ...}, {"i": ...}, {"i": None}, {"msg_id": ...}, {"msg_id": ""},
    {"username": None}, {"headers": {"sent-at": "x"}}, {"headers": None},
    {"msg": None}, {"msg": "text"}, {"msg": [1, 2]}, {"msg": ..., "body": {"a": 1}},
])
def test_fields_that_pass(fields: dict[str, Any]) -> None:
    payload = good(**fields)
    # Accepted, and not yet changed: normalising comes later.
    assert check_received(TOPIC, payload) == json.loads(payload)


# -- normalising -----------------------------------------------------------------

def test_normalise_derives_the_id_from_the_message_as_received() -> None:
    received = json.loads(good(msg_id=..., i=..., timestamp=...))
    expected = message_id(dict(received))
    envelope = normalise(received, now=1_700_000_123.9)
    assert envelope["msg_id"] == expected and expected.startswith("sha256:")
    assert envelope["i"] == 0
    assert envelope["timestamp"] == 1_700_000_123
    # The same message again gets the same id: stored twice, it is stored once.
    again = normalise(json.loads(good(msg_id=..., i=..., timestamp=...)), now=5)
    assert again["msg_id"] == expected


def test_normalise_smooths_oddities_and_keeps_the_rest() -> None:
    envelope = normalise(json.loads(good(timestamp=1_700_000_000.75, msg_id="")))
    assert envelope["timestamp"] == 1_700_000_000 and type(envelope["timestamp"]) is int
    assert envelope["msg_id"].startswith("sha256:")
    fedora_messaging = normalise({"topic": "t", "body": {}, "id": "uuid-1"}, now=1)
    assert fedora_messaging["msg_id"] == "uuid-1"
    kept = json.loads(good())
    assert normalise(dict(kept)) == kept


def test_what_the_publisher_sends_passes_unchanged() -> None:
    builder = EnvelopeBuilder("org.fedoraproject", "dev", username="alice")
    topic, payload = builder.encode("git", "repo.update", {"log": "hello", "n": [1, 2.5]})
    envelope = check_received(topic, payload)
    assert normalise(dict(envelope)) == envelope == json.loads(payload)


def test_check_fields_alone() -> None:
    check_fields({"topic": "t", "msg": {}})
    with pytest.raises(BadMessageError, match="no 'msg'"):
        check_fields({"topic": "t"})
