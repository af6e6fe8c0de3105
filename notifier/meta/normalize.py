"""Bring the three shapes of a message into one: a fedmsg envelope.

A message arrives as

* a fedmsg envelope: ``topic``, ``msg``, ``msg_id``, ``timestamp``, ... (a
  datanommer copy may add ``headers``, ``source_name`` and a float timestamp);
* a fedora-messaging message as ``fedora-messaging record`` writes it:
  ``topic``, ``headers``, ``id``, ``body`` (and ``queue``, ``priority``);
* a bare ``{"topic": ..., "msg": ...}``.

:func:`normalize` returns an envelope-like dict with at least ``topic``,
``msg``, ``msg_id`` and ``timestamp``; ``headers`` and ``username`` are kept
when present.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from ..bus.envelope import message_id
from ..errors import InputError

log = logging.getLogger(__name__)

def derived_msg_id(message: dict[str, Any]) -> str:
    """The message's id (:func:`notifier.bus.envelope.message_id`); InputError if it has none
    and cannot be encoded as JSON to make one."""
    try:
        return message_id(message)
    except (TypeError, ValueError) as exc:
        raise InputError(f"message on {message.get('topic')!r} cannot be encoded as JSON: "
                         f"{exc}") from exc


def _sent_at(headers: dict[str, Any]) -> float | None:
    value = headers.get("sent-at")
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.datetime.fromisoformat(value)
    except ValueError:
        log.debug("ignoring a sent-at header that is not ISO 8601: %r", value)
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp.timestamp()


def normalize(message: dict[str, Any]) -> dict[str, Any]:
    """Return ``message`` as a fedmsg-envelope-like dict.

    A complete fedmsg envelope (with ``msg_id`` and ``timestamp``) is
    returned as it is, not copied; anything else gets a new dict. A message
    without an id gets :func:`derived_msg_id`. A fedora-messaging message's
    ``body`` becomes ``msg``, its ``id`` ``msg_id`` and its ``sent-at`` header
    ``timestamp`` (seconds since the epoch, None when absent).

    Raises :class:`InputError` when ``message`` is not an object with a
    ``topic`` string and a ``msg`` or ``body``.
    """
    if not isinstance(message, dict):
        raise InputError(f"a message must be a JSON object, not {_kind(message)}")
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic:
        raise InputError("message has no 'topic' (a non-empty string)")
    if "msg" in message:
        if message.get("msg_id") and "timestamp" in message:
            return message
        envelope = dict(message)
        envelope.setdefault("timestamp", None)
        if not envelope.get("msg_id"):
            envelope["msg_id"] = derived_msg_id(message)
        return envelope
    if "body" in message:
        headers = message.get("headers")
        if headers is None:
            headers = {}
        elif not isinstance(headers, dict):
            raise InputError(f"message on {topic!r}: 'headers' must be an object, "
                             f"not {_kind(headers)}")
        return {"topic": topic, "msg": message["body"],
                "msg_id": derived_msg_id(message),
                "timestamp": _sent_at(headers), "headers": headers}
    raise InputError(f"message on {topic!r} has neither 'msg' (fedmsg) nor 'body' "
                     "(fedora-messaging)")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)
