"""The log form: a body that is just ``{"log": text}``, as ``notifier-logger`` sends."""

from __future__ import annotations

from typing import Any

from .base import Found


def log_text(body: Any) -> str | None:
    """The text of a ``{"log": text}`` body, or None for any other body."""
    if type(body) is dict and len(body) == 1:
        text = body.get("log")
        if isinstance(text, str):
            return text
    return None


class LogSource:
    """Describes log messages: the summary is the logged text, as it is.

    The agent (and only username) is the envelope's ``username``, the user
    that ran the logger, as fedmsg.meta's logger processor has it.
    """

    name = "log"

    def describe(self, envelope: dict[str, Any]) -> Found | None:
        text = log_text(envelope["msg"])
        if text is None:
            return None
        user = envelope.get("username")
        users = [user] if isinstance(user, str) and user else []
        # The application is left to the generic fallback, which caches it per topic.
        return Found({"summary": text, "agent": users[0] if users else None,
                      "usernames": users}, understood=True)
