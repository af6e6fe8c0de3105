"""What every metadata source shares: the fields, severities and the answer type."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

#: The keys of a description, in the order ``notifier describe`` prints them.
FIELDS = ("msg_id", "topic", "app", "summary", "link", "icon", "usernames", "agent",
          "packages", "containers", "modules", "flatpaks", "groups", "severity")

#: The fields a source may supply (``msg_id`` and ``topic`` come from the message).
DESCRIBED = FIELDS[2:]

#: Severity names, least to most severe.
SEVERITIES = ("debug", "info", "warning", "error")

#: The severity of a message nobody says anything about.
DEFAULT_SEVERITY = "info"


def severity_name(level: Any) -> str | None:
    """The name of a fedora-messaging severity level (10, 20, 30, 40), or None.

    Levels between the standard ones round down, so 35 is a warning and
    anything from 40 up is an error.
    """
    if isinstance(level, bool) or not isinstance(level, int | float):
        return None
    if level >= 40:
        return "error"
    if level >= 30:
        return "warning"
    if level >= 20:
        return "info"
    return "debug"


class Found(NamedTuple):
    """What one source knows about one message.

    ``fields`` holds any of :data:`DESCRIBED`; a missing key, None, an empty
    string or an empty list means "not known here". ``understood`` says the
    source recognises this kind of message (a schema class or fedmsg.meta
    processor written for it, or the log form): the slower sources after it
    are then not asked.
    """

    fields: dict[str, Any]
    understood: bool


class Source(Protocol):
    """One source of metadata. ``describe`` receives a normalised envelope."""

    name: str

    def describe(self, envelope: dict[str, Any]) -> Found | None:
        """What this source knows about the message, or None if nothing."""
        ...
