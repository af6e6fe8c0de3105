"""The backend interface: ``setup()``, ``send(notification)``, ``close()``.

``send_batch(notifications)`` is optional: it sends one by one unless a
backend can do better. A backend delivers content that is already rendered; it never looks at the
raw bus message. What it can carry is declared in class attributes, which the
render stage reads (as Apprise's ``body_maxlen``):

* ``max_length``: the longest body in bytes, or ``None``;
* ``single_line``: the body must be one line;
* ``markup``: ``"html"``, ``"pango"`` or ``None`` for plain text.

``send`` raises :class:`~notifier.errors.TemporaryDeliveryError` for what may
work later and :class:`~notifier.errors.PermanentDeliveryError` for what will
not; the outbox retries the first and gives up on the second.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import Config
from ..errors import DeliveryError


@dataclass(frozen=True)
class Notification:
    """One rendered notification for one user on one destination.

    ``content`` holds the rendered parts, by destination:

    * email: ``subject``, ``text``, ``html``;
    * irc: ``line``;
    * rss: ``title``, ``content``;
    * desktop: ``summary``, ``body``.
    """

    user: str
    destination: str
    #: where it goes: an email address, an IRC nick; the user name for rss/desktop
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


class Backend(abc.ABC):
    """Delivers notifications to one kind of destination."""

    #: the destination name rules use, e.g. ``"email"``
    name: ClassVar[str]
    max_length: ClassVar[int | None] = None
    single_line: ClassVar[bool] = False
    markup: ClassVar[str | None] = None
    #: whether :meth:`send_batch` delivers a batch at once (one transaction) rather
    #: than one by one, so a worker hands it whole chunks instead of one at a time
    batched: ClassVar[bool] = False

    def __init__(self, config: Config):
        self.config = config

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Open connections; called once before the first :meth:`send`."""

    @abc.abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver one notification, or raise a :class:`~notifier.errors.DeliveryError`."""

    def send_batch(self, notifications: list[Notification]) -> list[DeliveryError | None]:
        """Deliver several; return, for each, None when delivered or the error it got.

        The default sends one by one. A backend that can deliver a batch more
        cheaply (one transaction, say) overrides it; it must still report
        each notification's own outcome.
        """
        outcomes: list[DeliveryError | None] = []
        for notification in notifications:
            try:
                self.send(notification)
            except DeliveryError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""

    def __enter__(self) -> Backend:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
