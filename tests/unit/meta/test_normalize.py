from __future__ import annotations

import copy

import pytest

from notifier.errors import InputError
from notifier.meta import derived_msg_id, normalize

from . import samples


def test_a_complete_fedmsg_envelope_is_returned_as_it_is():
    envelope = copy.deepcopy(samples.BODHI_COMMENT)
    assert normalize(envelope) is envelope
    assert envelope == samples.BODHI_COMMENT


def test_a_fedora_messaging_record_becomes_an_envelope():
    out = normalize(samples.RECORDED_COPR)
    assert out["topic"] == "org.fedoraproject.prod.copr.build.end"
    assert out["msg"] is samples.RECORDED_COPR["body"]
    assert out["msg_id"] == "6f0e8c5e-6a4b-4b8e-9f57-0c9d1c0de001"
    assert out["headers"] is samples.RECORDED_COPR["headers"]
    assert out["timestamp"] == 1717600800.0  # sent-at 2024-06-05T15:20:00+00:00


def test_a_record_without_sent_at_has_no_timestamp_and_a_naive_one_is_utc():
    assert normalize({"topic": "a.b", "body": {}, "id": "x"})["timestamp"] is None
    out = normalize({"topic": "a.b", "body": {}, "id": "x",
                     "headers": {"sent-at": "2024-06-05T15:20:00"}})
    assert out["timestamp"] == 1717600800.0
    assert normalize({"topic": "a.b", "body": {}, "headers": {"sent-at": "soon"}})[
        "timestamp"] is None


def test_a_bare_message_gets_a_stable_derived_id():
    first = normalize(dict(samples.BARE))
    again = normalize(copy.deepcopy(samples.BARE))
    assert first["msg_id"] == again["msg_id"] == derived_msg_id(samples.BARE)
    assert first["msg_id"].startswith("sha256:") and len(first["msg_id"]) == 7 + 64
    assert first["timestamp"] is None
    assert first is not samples.BARE and "msg_id" not in samples.BARE
    other = normalize({"topic": samples.BARE["topic"], "msg": {"pipeline": 43}})
    assert other["msg_id"] != first["msg_id"]


def test_the_derived_id_ignores_key_order():
    a = {"topic": "t.x", "msg": {"a": 1, "b": [1, 2]}}
    b = {"msg": {"b": [1, 2], "a": 1}, "topic": "t.x"}
    assert derived_msg_id(a) == derived_msg_id(b)


def test_an_envelope_without_timestamp_is_completed_in_a_copy():
    message = {"topic": "t.x", "msg": {}, "msg_id": "2024-abc"}
    out = normalize(message)
    assert out == {"topic": "t.x", "msg": {}, "msg_id": "2024-abc", "timestamp": None}
    assert "timestamp" not in message


@pytest.mark.parametrize(("message", "expected"), [
    ([1, 2], "must be a JSON object, not an array"),
    ({"msg": {}}, "no 'topic'"),
    ({"topic": 3, "msg": {}}, "no 'topic'"),
    ({"topic": "a.b"}, "neither 'msg' (fedmsg) nor 'body' (fedora-messaging)"),
    ({"topic": "a.b", "body": {}, "headers": [1]}, "'headers' must be an object"),
])
def test_what_is_not_a_message_is_an_input_error(message, expected):
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        normalize(message)
