"""fedora-messaging's wire format on AMQP, to and from our ``(topic, envelope)`` frames.

A message fedora-messaging 3.x publishes is:

* exchange ``amq.topic``, routing key = the topic;
* body = ``json.dumps(body)`` (default separators, ASCII escapes), UTF-8;
* properties ``content_type=application/json``, ``content_encoding=utf-8``,
  ``delivery_mode=2`` (persistent), ``message_id`` (the message's id);
* headers ``fedora_messaging_schema`` (and ``fedora_messaging_schema_package``
  when the class came from a package), ``fedora_messaging_severity`` (10, 20,
  30, 40), ``sent-at`` (ISO 8601, whole seconds, UTC), ``priority``, and a
  ``fedora_messaging_<kind>_<name>: true`` flag per user, group, package
  (``rpm``), container, module and flatpak the message concerns.

:func:`publication` turns a fedmsg envelope into those; :func:`envelope_frames`
turns a received AMQP message back into the two frames the rest of notifier
reads, the AMQP headers kept in the envelope's ``headers``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import PublishError

SCHEMA_HEADER = "fedora_messaging_schema"
PACKAGE_HEADER = "fedora_messaging_schema_package"
SEVERITY_HEADER = "fedora_messaging_severity"
SENT_AT_HEADER = "sent-at"
#: severity names -> fedora-messaging's levels
SEVERITY_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
#: the description's list -> the kind in fedora-messaging's filter headers
FLAG_KINDS = (("usernames", "user"), ("groups", "group"), ("packages", "rpm"),
              ("containers", "container"), ("modules", "module"), ("flatpaks", "flatpak"))

#: what describes a message for its headers: an envelope -> a description
#: (``usernames``, ``groups``, ``packages``, ... lists, a ``severity`` name, and
#: optionally ``schema``, the name of the schema class that describes it)
Describe = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Publication:
    """One message as it goes onto AMQP: where, what, and its properties."""

    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, Any]
    priority: int | None = None

    @property
    def properties(self) -> dict[str, Any]:
        """Keyword arguments for ``pika.BasicProperties``."""
        return {"content_type": "application/json", "content_encoding": "utf-8",
                "delivery_mode": 2, "message_id": self.message_id, "headers": self.headers,
                "priority": self.priority}


def sent_at(timestamp: float) -> str:
    """``sent-at`` as fedora-messaging writes it: ISO 8601 in UTC, whole seconds."""
    moment = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.UTC)
    return moment.isoformat()


def headers_for(envelope: Mapping[str, Any], description: Mapping[str, Any] | None,
                schema: str, priority: int = 0) -> dict[str, Any]:
    """fedora-messaging's headers for ``envelope``, the flags taken from ``description``."""
    headers: dict[str, Any] = {}
    given = envelope.get("headers")
    if isinstance(given, dict):  # a message that came from AMQP keeps what it had
        headers.update(given)
    described_schema = (description or {}).get("schema")
    headers.setdefault(SCHEMA_HEADER, described_schema if isinstance(described_schema, str)
                       and described_schema else schema)
    package = (description or {}).get("schema_package")
    if isinstance(package, str) and package and described_schema == headers[SCHEMA_HEADER]:
        headers.setdefault(PACKAGE_HEADER, package)
    severity = (description or {}).get("severity")
    if SEVERITY_HEADER not in headers:
        headers[SEVERITY_HEADER] = SEVERITY_LEVELS.get(severity or "info", 20)
    stamp = envelope.get("timestamp")
    if SENT_AT_HEADER not in headers:
        headers[SENT_AT_HEADER] = sent_at(stamp if isinstance(stamp, int | float)
                                          and not isinstance(stamp, bool)
                                          else datetime.datetime.now().timestamp())
    headers.setdefault("priority", priority)
    for field, kind in FLAG_KINDS:
        for name in (description or {}).get(field) or ():
            headers[f"fedora_messaging_{kind}_{name}"] = True
    return headers


def publication(topic: bytes, envelope_bytes: bytes, *, schema: str,
                describe: Describe | None = None) -> Publication:
    """The AMQP message for the frames ``(topic, envelope)`` a publisher hands over.

    The body is the envelope's ``msg``, the id its ``msg_id``, the routing key
    its topic. A signature, if any, has no place in fedora-messaging's format
    and is not carried.
    """
    try:
        envelope = orjson.loads(envelope_bytes)
    except orjson.JSONDecodeError:
        envelope = json.loads(envelope_bytes)  # integers beyond 64 bits
    if not isinstance(envelope, dict) or "msg" not in envelope:
        raise PublishError("cannot publish on AMQP: the envelope has no 'msg'")
    routing_key = envelope.get("topic") or topic.decode("utf-8")
    msg_id = envelope.get("msg_id")
    if not isinstance(msg_id, str) or not msg_id:
        raise PublishError(f"cannot publish {routing_key!r} on AMQP: no msg_id")
    description = None
    if describe is not None:
        description = describe({"topic": routing_key, "msg": envelope["msg"],
                                "msg_id": msg_id, "timestamp": envelope.get("timestamp"),
                                "headers": envelope.get("headers")})
    body = json.dumps(envelope["msg"]).encode("utf-8")
    return Publication(routing_key, body, msg_id, headers_for(envelope, description, schema))


def _header_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _timestamp(headers: Mapping[str, Any], amqp_timestamp: Any) -> int | None:
    text = headers.get(SENT_AT_HEADER)
    if isinstance(text, str):
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return int(moment.timestamp())
    if isinstance(amqp_timestamp, int) and not isinstance(amqp_timestamp, bool):
        return amqp_timestamp
    return None


def envelope_frames(routing_key: str, body: bytes, message_id: str | None,
                    headers: Mapping[str, Any] | None, amqp_timestamp: Any = None
                    ) -> tuple[bytes, bytes]:
    """The ``(topic, envelope)`` frames for a message received from AMQP.

    The envelope is ``{"headers", "msg", "msg_id", "timestamp", "topic"}``;
    the body goes in as it came, once it parsed as JSON, so that the
    boundary checks (:mod:`notifier.bus.checks`) judge it. A body that is not
    JSON is handed over alone: the checks reject it (reason ``json``).
    """
    topic = routing_key.encode("utf-8")
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        # Not JSON (or beyond what orjson reads, which the checks reject too):
        # never spliced into an envelope, where it could close it early.
        return topic, body
    fields: dict[str, Any] = {"topic": routing_key}
    if headers:
        fields["headers"] = json.loads(json.dumps(dict(headers), default=_header_value))
    if message_id:
        fields["msg_id"] = message_id
    stamp = _timestamp(headers or {}, amqp_timestamp)
    if stamp is not None:
        fields["timestamp"] = stamp
    rest = orjson.dumps(fields)
    # Our fields come after the body, so a duplicate key in it cannot replace them.
    return topic, b'{"msg":' + body + b"," + rest[1:]
