"""RSS/Atom: each user's notifications as a feed.

:class:`RssBackend` only stores: ``send()`` adds the rendered ``title`` and
``content`` (HTML) to the user's items in the database
(:mod:`notifier.storage.feeds`); ``send_batch()`` stores a whole batch in
one transaction. Most feed notifications never reach it: the pipeline
stores them with the transaction that records them. It delivers what is
due later: digests, and rows recorded pending by an earlier version.
Whoever serves the feed over HTTP reads them back and writes the XML (:mod:`notifier.render.feed`).
"""

from __future__ import annotations

from ..config import Config
from ..errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    StorageError,
    TemporaryDeliveryError,
)
from ..notification import Notification
from ..storage.feeds import FeedStore, NewFeedItem
from .base import Backend


class RssBackend(Backend):
    """Keeps the newest ``[delivery] feed_items`` notifications of each user for their feed.

    The feed is ``notification.user``'s; for this destination the address is
    the user name too.
    """

    name = "rss"
    max_length = None
    single_line = False
    markup = "html"
    batched = True

    def __init__(self, config: Config):
        super().__init__(config)
        self._store: FeedStore | None = None

    def setup(self) -> None:
        """Open the database, creating and migrating it on first use."""
        if self.config.delivery.feed_items < 1:
            source = self.config.sources[-1] if self.config.sources else "the configuration"
            raise ConfigError(f"{source}: [delivery] 'feed_items' must be at least 1, "
                              f"not {self.config.delivery.feed_items}")
        self._open()

    def send(self, notification: Notification) -> None:
        """Add the notification to the feed of ``notification.user``.

        Sending the same message to the same user again changes nothing.
        """
        outcome = self.send_batch([notification])[0]
        if outcome is not None:
            raise outcome

    def send_batch(self, notifications: list[Notification]) -> list[DeliveryError | None]:
        """Add the notifications to their users' feeds in one transaction.

        One without a rendered ``title`` or ``content`` gets its own
        :class:`~notifier.errors.PermanentDeliveryError`; the others are
        stored. When the database fails, nothing is stored and each of them
        gets a :class:`~notifier.errors.TemporaryDeliveryError` caused by the
        :class:`~notifier.errors.StorageError`.
        """
        outcomes: list[DeliveryError | None] = [None] * len(notifications)
        pending: list[tuple[int, NewFeedItem]] = []
        for index, notification in enumerate(notifications):
            try:
                pending.append((index, _feed_item(notification)))
            except PermanentDeliveryError as exc:
                outcomes[index] = exc
        if not pending:
            return outcomes
        try:
            self._open().add_many(item for _, item in pending)
        except StorageError as exc:
            for index, _ in pending:
                notification = notifications[index]
                error = TemporaryDeliveryError(
                    f"feed of {notification.user!r}: cannot store notification "
                    f"{notification.msg_id}: {exc}")
                # what "raise error from exc" records, for each notification of the batch
                error.__cause__ = exc
                outcomes[index] = error
        return outcomes

    def close(self) -> None:
        """Release database connections. Safe to call more than once."""
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def _open(self) -> FeedStore:
        if self._store is None:
            self._store = FeedStore.from_config(self.config)
        return self._store


def _feed_item(notification: Notification) -> NewFeedItem:
    """What is stored for ``notification``; PermanentDeliveryError when it was not rendered."""
    item = NewFeedItem.of(notification)
    if item is None:
        missing = "title" if not isinstance(notification.content.get("title"), str) \
            else "content"
        raise PermanentDeliveryError(
            f"feed of {notification.user!r}: notification {notification.msg_id} "
            f"has no rendered '{missing}'")
    return item
