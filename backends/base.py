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
import logging
from typing import ClassVar

from ..config import Config
from ..errors import DeliveryError, TemporaryDeliveryError
from ..notification import Notification

log = logging.getLogger(__name__)


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

        The default sends one by one. Whatever else :meth:`send` raises (a
        bug, a library error nobody translated) is that notification's
        :class:`~notifier.errors.TemporaryDeliveryError`, logged with its
        traceback: it counts as a failed attempt, and the others are still
        sent. A backend that can deliver a batch more cheaply (one
        transaction, say) overrides it; it must still report each
        notification's own outcome.
        """
        outcomes: list[DeliveryError | None] = []
        for notification in notifications:
            try:
                self.send(notification)
            except DeliveryError as exc:
                outcomes.append(exc)
            except Exception as exc:  # one notification's failure, whatever it is
                log.error("%s backend: sending %s to %s raised", self.name,
                          notification.msg_id, notification.user, exc_info=exc)
                error = TemporaryDeliveryError(
                    f"the {self.name} backend failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                outcomes.append(error)
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
