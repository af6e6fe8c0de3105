"""The :class:`Notification`: one rendered message for one person on one destination.

The render stage makes them, the outbox stores them (``to_dict`` /
``from_dict``), and the backends deliver them. It is the one type every
stage after matching shares, so it lives here, beneath them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One rendered notification for one user on one destination.

    ``content`` holds the rendered parts, by destination:

    * email: ``subject``, ``text``, ``html``;
    * irc: ``line``;
    * rss: ``title``, ``content``;
    * desktop: ``summary``, ``body``;
    * webpush: ``title``, ``body``.
    """

    user: str
    destination: str
    #: where it goes: an email address, an IRC nick; the user name for rss/desktop/webpush
    address: str
    msg_id: str
    topic: str
    app: str
    content: Mapping[str, str]
    rules: tuple[str, ...] = ()
    link: str | None = None
    icon: str | None = None
    severity: str = "info"
    timestamp: float = 0.0
    #: extra headers for email (Message-ID, threading, List-Unsubscribe, ...)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What makes it unique: ``user``, ``msg_id`` and ``destination``."""
        return f"{self.user}\x1f{self.msg_id}\x1f{self.destination}"

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "destination": self.destination, "address": self.address,
                "msg_id": self.msg_id, "topic": self.topic, "app": self.app,
                "content": dict(self.content), "rules": list(self.rules), "link": self.link,
                "icon": self.icon, "severity": self.severity, "timestamp": self.timestamp,
                "headers": dict(self.headers)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        return cls(**{**data, "rules": tuple(data.get("rules", ())),
                      "content": dict(data["content"]), "headers": dict(data.get("headers", {}))})
