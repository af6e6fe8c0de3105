"""Envelopes: fields, encoding, topics, ids."""

from __future__ import annotations

import datetime
import json
import re
import threading

import pytest

from notifier.bus.envelope import (
    EnvelopeBuilder,
    MessageIds,
    canonical_json,
    decode_envelope,
    qualify_topic,
)
from notifier.bus.publisher import guess_modname
from notifier.errors import PublishError

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_envelope_has_fedmsg_fields_and_key_order() -> None:
    builder = EnvelopeBuilder("org.fedoraproject", "dev", username="alice")
    topic, payload = builder.encode("git", "repo.update", {"b": [1, 2], "a": "é ☃"})
    assert topic == b"org.fedoraproject.dev.git.repo.update"
    envelope = json.loads(payload)
    assert set(envelope) == {"i", "msg", "msg_id", "timestamp", "topic", "username"}
    assert envelope["msg"] == {"b": [1, 2], "a": "é ☃"}
    assert envelope["i"] == 1
    assert envelope["username"] == "alice"
    assert isinstance(envelope["timestamp"], int)
    assert re.fullmatch(rf"\d{{4}}-{UUID4}", envelope["msg_id"])
    assert envelope["msg_id"].startswith(str(datetime.datetime.now(datetime.UTC).year))
    # Sorted keys, compact separators: the same JSON fedmsg writes (text as UTF-8).
    assert payload.decode("utf-8") == json.dumps(envelope, sort_keys=True,
                                                 separators=(",", ":"), ensure_ascii=False)
    assert json.loads(builder.encode("git", "x", {})[1])["i"] == 2


def test_build_matches_encode_shape() -> None:
    builder = EnvelopeBuilder("org.fedoraproject", "dev", username="bob")
    envelope = builder.build("git", "x", {"k": {1, 2}})
    assert envelope["msg"] == {"k": [1, 2]}
    assert envelope["topic"] == "org.fedoraproject.dev.git.x"
    assert re.fullmatch(rf"\d{{4}}-{UUID4}", envelope["msg_id"])


def test_canonical_json_is_fedmsgs_encoding() -> None:
    obj = {"z": 1, "a": {"é": "☃"}, "m": [True, None]}
    assert canonical_json(obj) == '{"a":{"\\u00e9":"\\u2603"},"m":[true,null],"z":1}'


def test_body_that_cannot_be_json_is_a_publish_error() -> None:
    builder = EnvelopeBuilder("p", "e", username="u")
    with pytest.raises(PublishError, match="not JSON-serialisable"):
        builder.encode("m", "t", {"x": object()})


def test_big_integers_fall_back_to_the_standard_encoder() -> None:
    builder = EnvelopeBuilder("p", "e", username="u")
    _, payload = builder.encode("m", "t", {"n": 2**70})
    assert json.loads(payload)["msg"] == {"n": 2**70}


@pytest.mark.parametrize("topic, expected", [
    ("repo.update", "org.fedoraproject.dev.git.repo.update"),
    ("org.fedoraproject.prod.git.repo.update", "org.fedoraproject.prod.git.repo.update"),
    ("org.fedoraprojectX.y", "org.fedoraproject.dev.git.org.fedoraprojectX.y"),
])
def test_topic_is_not_prefixed_twice(topic: str, expected: str) -> None:
    assert qualify_topic("org.fedoraproject", "dev", "git", topic) == expected


def test_message_ids_are_unique_uuid4_across_threads() -> None:
    ids = MessageIds()
    seen: list[bytes] = []

    def take() -> None:
        seen.extend(ids.next(2026) for _ in range(5000))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 20000
    assert all(re.fullmatch(rf"2026-{UUID4}", i.decode()) for i in seen[:3000])


def test_message_ids_follow_the_year() -> None:
    ids = MessageIds()
    assert ids.next(2026).startswith(b"2026-")
    assert ids.next(2027).startswith(b"2027-")


def test_guess_modname_is_callers_top_level_package() -> None:
    assert guess_modname() == "tests"


def test_decode_envelope_reasons() -> None:
    assert decode_envelope(b"t", b'{"msg": 1}')["topic"] == "t"
    with pytest.raises(ValueError, match="not JSON"):
        decode_envelope(b"t", b"{nope")
    with pytest.raises(ValueError, match="not a JSON object"):
        decode_envelope(b"t", b"[1]")
