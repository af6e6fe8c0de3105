"""The fedmsg envelope: topics, message ids, and the canonical JSON encoding.

An envelope is the JSON object every bus message travels in::

    {"i": 1, "msg": {...}, "msg_id": "2026-<uuid4>", "timestamp": 1764000000,
     "topic": "org.fedoraproject.dev.git.repo.update", "username": "alice"}

Signed envelopes also carry ``crypto``, ``signature`` and ``certificate``.

fedmsg encodes it with sorted keys and compact separators. For an unsigned
message :class:`EnvelopeBuilder` writes those bytes directly, encoding only
``msg`` (with orjson), which is what makes publishing cheap. What gets signed
uses :func:`canonical_json`, fedmsg's exact encoding with ASCII escapes.
"""

from __future__ import annotations

import calendar
import getpass
import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import orjson

from ..errors import BadMessageError, PublishError
from .decoding import MAX_DEPTH, loads_checked

#: fedmsg's canonical encoder: sorted keys, compact separators, ASCII only.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)

_ENVELOPE = b'{"i":%d,"msg":%b,"msg_id":"%b","timestamp":%d,"topic":%b,"username":%b}'
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_ID_BATCH = 2048  # uuid4s drawn from os.urandom at a time
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if hasattr(obj, "__json__"):
        return obj.__json__()
    if hasattr(obj, "timestamp"):  # datetime, as fedmsg sends it: seconds since the epoch
        return obj.timestamp()
    raise TypeError(f"a {type(obj).__name__} cannot be sent on the bus: {obj!r}")


_MSG_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                default=_json_default)


def canonical_json(obj: Any) -> str:
    """Encode ``obj`` the way fedmsg does before signing and sending."""
    return _MSG_ENCODER.encode(obj)


#: the prefix of the ids made up for messages that arrive without one
DERIVED_ID_PREFIX = "sha256:"


def message_id(message: dict[str, Any]) -> str:
    """The message's ``msg_id`` (fedmsg) or ``id`` (fedora-messaging); else one made up.

    The made-up id is ``sha256:`` and the SHA-256 of the message's canonical
    JSON (:func:`canonical_json`), so the same message always gets the same
    id: stored twice, it is stored once. This is the only place an id is
    derived. Raises ``TypeError`` or ``ValueError`` for content JSON cannot hold.
    """
    for key in ("msg_id", "id"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    digest = hashlib.sha256(canonical_json(message).encode("ascii")).hexdigest()
    return DERIVED_ID_PREFIX + digest


def qualify_topic(topic_prefix: str, environment: str, modname: str, topic: str) -> str:
    """Return the full topic ``{prefix}.{environment}.{modname}.{topic}``.

    A topic that already starts with ``{prefix}.`` is returned unchanged
    (fedmsg would prefix it a second time).
    """
    if topic_prefix and topic.startswith(topic_prefix + "."):
        return topic
    parts = [p for p in (topic_prefix, environment, modname, topic) if p]
    return ".".join(parts)


class MessageIds:
    """Source of fedmsg message ids, ``"<year>-<uuid4>"``, as ASCII bytes.

    Random bytes come from the OS a batch at a time; each id is cut from the
    batch with the uuid4 version and variant bits set, as ``uuid.uuid4()``
    would. Taking the next id is a single ``next()`` on a list iterator, which
    is atomic, so no lock is needed between threads.
    """

    def __init__(self) -> None:
        self._ids: Iterator[bytes] = iter(())
        self._year = 0

    def _refill(self, year: int) -> None:
        h = os.urandom(16 * _ID_BATCH).hex()
        self._year = year
        self._ids = iter([
            f"{year}-{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-"
            f"{_VARIANT[h[i + 16]]}{h[i + 17:i + 20]}-{h[i + 20:i + 32]}".encode("ascii")
            for i in range(0, 32 * _ID_BATCH, 32)])

    def next(self, year: int) -> bytes:
        """The next id, for messages sent in ``year``."""
        if year != self._year:
            self._refill(year)
        try:
            return next(self._ids)
        except StopIteration:
            self._refill(year)
            return next(self._ids)


class _Clock:
    """Integer seconds and the current UTC year, the year recomputed only when it ends."""

    def __init__(self) -> None:
        self._year_end = 0.0
        self.year = 0

    def now(self) -> tuple[int, int]:
        now = time.time()
        if now >= self._year_end:
            self.year = time.gmtime(now).tm_year
            self._year_end = calendar.timegm((self.year + 1, 1, 1, 0, 0, 0))
        return int(now), self.year


class EnvelopeBuilder:
    """Builds envelopes for one publishing process.

    ``i`` counts from 1 per builder, as fedmsg counts per process.
    """

    def __init__(self, topic_prefix: str, environment: str, username: str | None = None):
        self.topic_prefix = topic_prefix
        self.environment = environment
        self.username = username if username is not None else _current_user()
        self._counter = itertools.count(1)
        self._ids = MessageIds()
        self._clock = _Clock()
        self._username_json = orjson.dumps(self.username)
        self._topic_cache: dict[tuple[str, str], tuple[str, bytes, bytes]] = {}

    def topic(self, modname: str, topic: str) -> str:
        """The fully qualified topic for ``modname`` and ``topic``."""
        return qualify_topic(self.topic_prefix, self.environment, modname, topic)

    def _topic_parts(self, modname: str, topic: str) -> tuple[str, bytes, bytes]:
        key = (modname, topic)
        parts = self._topic_cache.get(key)
        if parts is None:
            full = self.topic(modname, topic)
            parts = (full, full.encode("utf-8"), orjson.dumps(full))
            if len(self._topic_cache) < 4096:
                self._topic_cache[key] = parts
        return parts

    def encode(self, modname: str, topic: str, msg: Any) -> tuple[bytes, bytes]:
        """Return the two ZeroMQ frames ``(topic, envelope)`` for an unsigned message.

        The envelope has fedmsg's key order and separators; text is UTF-8
        rather than ASCII escapes, which decodes to the same JSON.
        """
        _, topic_bytes, topic_json = self._topic_parts(modname, topic)
        try:
            body = orjson.dumps(msg, default=_json_default, option=_ORJSON_OPTIONS)
        except TypeError:
            body = self._encode_slow(msg, topic)
        timestamp, year = self._clock.now()
        return topic_bytes, _ENVELOPE % (next(self._counter), body, self._ids.next(year),
                                         timestamp, topic_json, self._username_json)

    @staticmethod
    def _encode_slow(msg: Any, topic: str) -> bytes:
        # orjson refuses what the stdlib accepts: integers beyond 64 bits, for one.
        try:
            return _MSG_ENCODER.encode(msg).encode("ascii")
        except (TypeError, ValueError) as exc:
            raise PublishError(f"message body for {topic!r} is not JSON-serialisable: {exc}") \
                from exc

    def build(self, modname: str, topic: str, msg: Any) -> dict[str, Any]:
        """Return the envelope as a dict, for signing or inspection."""
        full, _, _ = self._topic_parts(modname, topic)
        # Round-trip the body so that what is signed is what is sent.
        try:
            body = json.loads(_MSG_ENCODER.encode(msg))
        except (TypeError, ValueError) as exc:
            raise PublishError(f"message body for {topic!r} is not JSON-serialisable: {exc}") \
                from exc
        timestamp, year = self._clock.now()
        return {"i": next(self._counter), "msg": body,
                "msg_id": self._ids.next(year).decode("ascii"),
                "timestamp": timestamp, "topic": full, "username": self.username}


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def topic_text(topic: bytes) -> str:
    """The topic frame as text; :class:`BadMessageError` (reason ``topic``) if it cannot be one."""
    try:
        text = topic.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessageError("topic", f"topic frame is not UTF-8: {topic[:80]!r}") from exc
    if "\x00" in text:
        raise BadMessageError("topic", f"topic frame holds a NUL byte: {topic[:80]!r}")
    return text


def decode_envelope(topic: bytes, payload: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse the two frames of a bus message into an envelope dict.

    The JSON is checked as it is parsed (see :mod:`notifier.bus.decoding`):
    depth, numbers, text. An envelope without a ``topic`` takes the topic
    frame's. Raises :class:`~notifier.errors.BadMessageError` (a ``ValueError``)
    whose ``reason`` says what is wrong; the fields are checked by
    :mod:`notifier.bus.checks`.
    """
    envelope = loads_checked(payload, max_depth)
    if not isinstance(envelope, dict):
        raise BadMessageError("json", "envelope is not a JSON object")
    if "topic" not in envelope:
        envelope["topic"] = topic_text(topic)
    return envelope
