"""The fallback: what can be said about any message, understood or not.

* ``app``: the modname part of the topic (see :mod:`notifier.meta.topics`);
* ``summary``: the body's text when it has some (a string body, or a
  ``summary``, ``title``, ``subject``, ``message``, ``text`` or ``log``
  string in it), else the event name followed by the body as compact JSON,
  cut at :data:`SUMMARY_LENGTH` characters;
* ``severity``: the ``fedora_messaging_severity`` header, else ``info``;
* ``usernames``, ``groups``, and the artifacts ``packages``, ``containers``,
  ``modules``, ``flatpaks``: from the filter headers a fedora-messaging
  publisher adds (``fedora_messaging_user_<name>``,
  ``fedora_messaging_group_<name>``, ``fedora_messaging_rpm_<name>``,
  ``fedora_messaging_container_<name>``, ``fedora_messaging_module_<name>``,
  ``fedora_messaging_flatpak_<name>``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .base import DEFAULT_SEVERITY, severity_name
from .topics import TopicNames

SUMMARY_LENGTH = 200
_TEXT_KEYS = ("summary", "title", "subject", "message", "text", "log")
_HEADER_LISTS = (("fedora_messaging_user_", "usernames"), ("fedora_messaging_rpm_", "packages"),
                 ("fedora_messaging_container_", "containers"),
                 ("fedora_messaging_module_", "modules"),
                 ("fedora_messaging_flatpak_", "flatpaks"),
                 ("fedora_messaging_group_", "groups"))


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LENGTH else text[:SUMMARY_LENGTH - 1] + "…"


def body_summary(event: str, body: Any) -> str:
    """A one-line summary of ``body``, a message on ``event``."""
    if isinstance(body, str) and body.strip():
        return _shorten(body.strip().splitlines()[0])
    if isinstance(body, dict):
        for key in _TEXT_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return _shorten(value.strip().splitlines()[0])
    if body in (None, {}, [], ""):
        return event
    try:
        dumped = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:  # what orjson refuses (integers beyond 64 bits, for one)
        try:
            dumped = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                                default=str)
        except (TypeError, ValueError):  # mixed key types, or a cycle, from Python callers
            dumped = repr(body)
    return _shorten(f"{event}: {dumped}")


class GenericSource:
    """Fills what the other sources left out, from the topic, body and headers alone."""

    name = "generic"

    def __init__(self, topics: TopicNames):
        self._topics = topics

    def fill(self, fields: dict[str, Any], envelope: dict[str, Any]) -> None:
        """Set every empty field of ``fields`` this source knows; keep the others."""
        if not fields["app"] or not fields["summary"]:
            app, event = self._topics.split(envelope["topic"])
            if not fields["app"]:
                fields["app"] = app
            if not fields["summary"]:
                fields["summary"] = body_summary(event, envelope["msg"])
        headers = envelope.get("headers")
        if headers and isinstance(headers, dict):
            if not fields["severity"]:
                fields["severity"] = severity_name(headers.get("fedora_messaging_severity"))
            for prefix, field in _HEADER_LISTS:
                if not fields[field]:
                    fields[field] = [key[len(prefix):] for key, flag in headers.items()
                                     if flag is True and key.startswith(prefix)
                                     and len(key) > len(prefix)]
        if not fields["severity"]:
            fields["severity"] = DEFAULT_SEVERITY
