"""Checks at the boundary: what a message from the bus must be before anything reads it.

``notifier serve`` runs every message it receives through :func:`check_received`
(sizes, then the JSON as :mod:`~notifier.bus.decoding` parses it, then the
fields), validates its signature when asked to, and only then
:func:`normalise`\\ s it, so that a signature is checked against the envelope
exactly as it was sent.

A check that fails raises :class:`~notifier.errors.BadMessageError` whose
``reason`` is one of :data:`REASONS`; the message is rejected alone.

The fields checked are those later stages read: ``topic`` (a non-empty
string), ``msg`` or ``body`` (present, any JSON), ``msg_id`` and ``id``
(strings), ``timestamp`` (a number of seconds between 1970 and 2100), ``i``
(an integer), ``username`` (a string), ``headers`` (an object), and
``crypto``, ``signature``, ``certificate`` (strings). An optional field
that is null counts as absent.

Oddities later stages cope with once smoothed are normalised rather than
rejected: a missing or empty ``msg_id`` is derived
(:func:`~notifier.bus.envelope.message_id`), a missing ``i`` becomes 0, a
float ``timestamp`` becomes whole seconds and a missing one the time of receipt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BadMessageError
from .decoding import MAX_DEPTH
from .envelope import decode_envelope, message_id

if TYPE_CHECKING:
    from ..config import Config

#: Why a message was rejected: the reason (a metric label, a column) and what it means.
REASONS = {
    "frames": "it did not arrive as two frames (topic, envelope)",
    "too-big": "the envelope is over max_message_bytes",
    "topic": "the topic is too long, not UTF-8, or holds a NUL byte",
    "json": "the envelope is not JSON (or not UTF-8), or not a JSON object",
    "depth": f"its JSON is nested deeper than {MAX_DEPTH} levels",
    "number": "it holds NaN, Infinity or an integer beyond 64 bits",
    "text": "a string in it holds a NUL character or a lone surrogate",
    "field": "a field is missing, or of the wrong type or range (timestamp, msg_id, ...)",
    "signature": "its signature, certificate chain or CRL did not validate",
    "describe": "describing it (app, summary, users, packages) failed",
    "match": "matching it against the rules failed",
    "render": "rendering it failed for every recipient",
    "record": "the database refused to store it",
}

#: the newest timestamp accepted: 2100-01-01 UTC (the oldest is the epoch)
MAX_TIMESTAMP = 4_102_444_800
#: a topic (frame or field) longer than this, in UTF-8 bytes, is rejected
MAX_TOPIC_BYTES = 1024
#: the longest ``msg_id`` (or ``id``) accepted, in characters
MAX_ID_LENGTH = 255
_TEXT_FIELDS = ("username", "crypto", "signature", "certificate")


@dataclass(frozen=True)
class Limits:
    """The bounds a received message must keep."""

    max_message_bytes: int = 1_048_576
    max_topic_bytes: int = MAX_TOPIC_BYTES
    max_depth: int = MAX_DEPTH

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(max_message_bytes=config.max_message_bytes)


def check_received(topic: bytes, payload: bytes, limits: Limits = Limits()) -> dict[str, Any]:
    """The envelope in the frames ``topic`` and ``payload``, checked but not yet normalised.

    Raises :class:`~notifier.errors.BadMessageError` with the reason and,
    once the envelope could be read, its ``msg_id``.
    """
    if len(payload) > limits.max_message_bytes:
        raise BadMessageError("too-big", f"{len(payload)} bytes, over max_message_bytes "
                                         f"{limits.max_message_bytes}")
    if len(topic) > limits.max_topic_bytes:
        raise BadMessageError("topic", f"topic frame of {len(topic)} bytes, over "
                                       f"{limits.max_topic_bytes}")
    envelope = decode_envelope(topic, payload, limits.max_depth)
    try:
        check_fields(envelope, limits)
    except BadMessageError as exc:
        msg_id = envelope.get("msg_id")
        exc.msg_id = msg_id if isinstance(msg_id, str) and msg_id else None
        raise
    return envelope


def _wrong(name: str, value: Any, want: str) -> BadMessageError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return BadMessageError("field", f"'{name}' must be {want}, not {type(value).__name__} "
                                    f"{shown}")


def check_fields(envelope: dict[str, Any], limits: Limits = Limits()) -> None:
    """Check the type (and range) of every field later stages read; see the module docstring."""
    topic = envelope.get("topic")
    if not isinstance(topic, str) or not topic:
        raise _wrong("topic", topic, "a non-empty string")
    if len(topic.encode("utf-8")) > limits.max_topic_bytes:
        raise BadMessageError("topic", f"'topic' of over {limits.max_topic_bytes} bytes")
    if "msg" not in envelope and "body" not in envelope:
        raise BadMessageError("field", "no 'msg' (fedmsg) or 'body' (fedora-messaging)")
    for name in ("msg_id", "id"):
        value = envelope.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _wrong(name, value, "a string")
        if len(value) > MAX_ID_LENGTH:
            raise BadMessageError("field", f"'{name}' is longer than {MAX_ID_LENGTH} characters")
    stamp = envelope.get("timestamp")
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise _wrong("timestamp", stamp, "a number of seconds since the epoch")
        if not 0 <= stamp <= MAX_TIMESTAMP:
            raise BadMessageError("field", f"'timestamp' {stamp!r} is not between 1970 and 2100")
    counter = envelope.get("i")
    if counter is not None and (isinstance(counter, bool) or not isinstance(counter, int)):
        raise _wrong("i", counter, "an integer")
    headers = envelope.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise _wrong("headers", headers, "an object")
    for name in _TEXT_FIELDS:
        value = envelope.get(name)
        if value is not None and not isinstance(value, str):
            raise _wrong(name, value, "a string")


def normalise(envelope: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Smooth the oddities listed in the module docstring, in place; return ``envelope``.

    Call it after the signature was validated: it changes the envelope.
    """
    msg_id = envelope.get("msg_id")
    if not isinstance(msg_id, str) or not msg_id:
        # From the message as received, so the same message always gets the same id.
        envelope["msg_id"] = message_id(envelope)
    if envelope.get("i") is None:
        envelope["i"] = 0
    stamp = envelope.get("timestamp")
    if stamp is None:
        envelope["timestamp"] = int(time.time() if now is None else now)
    elif type(stamp) is float:
        envelope["timestamp"] = int(stamp)
    return envelope
