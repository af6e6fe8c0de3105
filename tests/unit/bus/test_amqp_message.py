"""fedora-messaging's wire format: envelopes to AMQP messages and back, without a broker."""

from __future__ import annotations

import json

import pytest

from notifier.bus.amqp_message import envelope_frames, headers_for, publication, sent_at
from notifier.bus.amqp_transport import routing_keys, shown
from notifier.bus.checks import check_received
from notifier.bus.envelope import EnvelopeBuilder
from notifier.bus.transports import TRANSPORTS, transport_for
from notifier.errors import BadMessageError, PublishError, TransportError


def test_amqp_schemes_are_served() -> None:
    assert {"amqp", "amqps"} <= set(TRANSPORTS)
    assert type(transport_for("amqp://h/")).__name__ == "AmqpTransport"
    assert type(transport_for("amqps://h/")).__name__ == "AmqpTransport"
    with pytest.raises(TransportError, match="cannot bind"):
        transport_for("amqp://h/").publisher("amqp://h/", bind=True, timeout=1,
                                             high_water_mark=0)


def test_publication_follows_fedora_messaging() -> None:
    builder = EnvelopeBuilder("org.fedoraproject", "prod", "alice")
    topic, envelope = builder.encode("bodhi", "update.comment", {"user": "ada", "n": [1, "é"]})
    seen = []

    def describe(env):
        seen.append(env)
        return {"severity": "error", "usernames": ["ada", "bob"], "packages": ["kernel"],
                "groups": ["qa"], "containers": ["c1"], "modules": ["m1"], "flatpaks": ["f1"]}

    message = publication(topic, envelope, schema="base.message", describe=describe)
    sent = json.loads(envelope)
    assert message.routing_key == "org.fedoraproject.prod.bodhi.update.comment"
    assert message.message_id == sent["msg_id"]
    assert message.body == json.dumps(sent["msg"]).encode("utf-8")
    assert b"\\u00e9" in message.body  # ASCII escapes, as json.dumps writes them
    assert seen[0]["msg"] == sent["msg"] and seen[0]["msg_id"] == sent["msg_id"]
    properties = message.properties
    assert properties["content_type"] == "application/json"
    assert properties["content_encoding"] == "utf-8"
    assert properties["delivery_mode"] == 2
    assert properties["message_id"] == sent["msg_id"]
    headers = properties["headers"]
    assert headers["fedora_messaging_schema"] == "base.message"
    assert headers["fedora_messaging_severity"] == 40
    assert headers["sent-at"] == sent_at(sent["timestamp"])
    assert headers["priority"] == 0
    for flag in ("user_ada", "user_bob", "rpm_kernel", "group_qa", "container_c1",
                 "module_m1", "flatpak_f1"):
        assert headers[f"fedora_messaging_{flag}"] is True


def test_sent_at_is_iso_8601_utc_in_whole_seconds() -> None:
    assert sent_at(1767323045.7) == "2026-01-02T03:04:05+00:00"


def test_headers_a_message_already_had_are_kept() -> None:
    envelope = {"msg": {}, "msg_id": "x", "timestamp": 0, "topic": "t",
                "headers": {"fedora_messaging_schema": "bodhi.update.comment.v1",
                            "fedora_messaging_severity": 30, "sent-at": "2020-01-01T00:00:00"}}
    headers = headers_for(envelope, {"severity": "debug"}, "base.message")
    assert headers["fedora_messaging_schema"] == "bodhi.update.comment.v1"
    assert headers["fedora_messaging_severity"] == 30
    assert headers["sent-at"] == "2020-01-01T00:00:00"


def test_an_envelope_without_msg_cannot_be_published() -> None:
    with pytest.raises(PublishError, match="no 'msg'"):
        publication(b"t", b'{"topic": "t"}', schema="base.message")


def test_received_messages_become_checked_envelopes() -> None:
    headers = {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 20,
               "sent-at": "2026-01-02T03:04:05+00:00", "blob": b"\xff"}
    topic, payload = envelope_frames("org.x.build", b'{"a": [1, 2]}', "id-1", headers)
    envelope = check_received(topic, payload)
    assert topic == b"org.x.build"
    assert envelope["msg"] == {"a": [1, 2]}
    assert envelope["msg_id"] == "id-1"
    assert envelope["timestamp"] == 1767323045
    assert envelope["headers"]["fedora_messaging_severity"] == 20
    assert envelope["headers"]["blob"] == "\ufffd"


def test_a_body_cannot_forge_the_envelope_fields() -> None:
    # Not JSON by itself: handed over alone, and rejected by the checks.
    topic, payload = envelope_frames("org.x", b'1, "msg_id": "forged"', "real", None)
    with pytest.raises(BadMessageError) as info:
        check_received(topic, payload)
    assert info.value.reason == "json"
    # A JSON body with an id of its own stays the body; the id is the AMQP message's.
    topic, payload = envelope_frames("org.x", b'{"msg_id": "forged"}', "real", None)
    envelope = check_received(topic, payload)
    assert envelope["msg_id"] == "real" and envelope["msg"] == {"msg_id": "forged"}


def test_a_message_without_id_or_time_is_left_to_the_checks() -> None:
    topic, payload = envelope_frames("org.x", b"[]", None, None, 1700000000)
    envelope = check_received(topic, payload)
    assert "msg_id" not in envelope and envelope["timestamp"] == 1700000000


def test_tail_prefixes_become_binding_keys() -> None:
    assert routing_keys("") == ["#"]
    assert routing_keys("org.fedoraproject.") == ["org.fedoraproject.#"]
    assert routing_keys("org.fedoraproject.prod.bodhi") == \
        ["org.fedoraproject.prod.bodhi", "org.fedoraproject.prod.bodhi.#"]


def test_addresses_are_shown_without_password() -> None:
    assert shown("amqps://svc:s3cret@rabbit.example:5671/%2F") == \
        "amqps://svc@rabbit.example:5671/%2F"
    assert shown("amqp://rabbit/") == "amqp://rabbit/"


def test_the_described_schema_class_names_the_header() -> None:
    envelope = {"msg": {}, "msg_id": "x", "timestamp": 0, "topic": "t"}
    assert headers_for(envelope, {"schema": "bodhi.update.comment.v1"}, "base.message")[
        "fedora_messaging_schema"] == "bodhi.update.comment.v1"
    assert headers_for(envelope, {"schema": None}, "base.message")[
        "fedora_messaging_schema"] == "base.message"


def test_the_schema_package_goes_with_the_described_class() -> None:
    envelope = {"msg": {}, "msg_id": "x", "timestamp": 0, "topic": "t"}
    headers = headers_for(envelope, {"schema": "bodhi.update.comment.v1",
                                     "schema_package": "bodhi-messages"}, "base.message")
    assert headers["fedora_messaging_schema_package"] == "bodhi-messages"
    # not for a schema header the message had already (that one's package is unknown here)
    envelope["headers"] = {"fedora_messaging_schema": "other.v1"}
    headers = headers_for(envelope, {"schema": "bodhi.update.comment.v1",
                                     "schema_package": "bodhi-messages"}, "base.message")
    assert "fedora_messaging_schema_package" not in headers
