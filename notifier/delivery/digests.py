"""Digests: held notifications go out together, on the user's schedule.

Every few seconds the scheduler looks at what is held per user and
destination. When a digest is due (see :mod:`.schedule`) it renders one
digest from the held items, grouped by app and package, newest first, and
queues it while marking the items digested, in one transaction: items
survive restarts and none goes out twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import InputError
from ..notification import Notification
from ..storage.outbox import Outbox
from .periodic import Periodic
from .pipeline import address_for, digest_settings
from .schedule import Schedule

log = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 100


class RendersDigests(Protocol):
    def render_digest(self, destination: str, user: dict[str, Any],
                      items: list[Notification], address: str) -> Notification: ...


class DigestScheduler:
    """Sends due digests; :meth:`run_once` is one pass, :meth:`start` runs passes in a thread."""

    def __init__(self, outbox: Outbox, renderer: RendersDigests,
                 users: Callable[[str], dict[str, Any] | None], *, interval: float = 1.0,
                 on_queued: Callable[[str], None] | None = None):
        self.outbox = outbox
        self.renderer = renderer
        self.users = users
        self.interval = interval
        self.on_queued = on_queued or (lambda destination: None)
        self._periodic = Periodic("digests", interval, self.run_once)

    def run_once(self) -> int:
        """Queue every digest that is due now; return how many."""
        queued = 0
        now = self.outbox.clock()
        for user_name, destination, count, oldest in self.outbox.held_groups():
            user = self.users(user_name)
            if user is None:
                continue
            settings = digest_settings(user, destination) or {}
            try:
                schedule = Schedule.parse(str(settings.get("every", "1h")))
            except InputError as exc:
                log.error("digest for %s on %s: %s", user_name, destination, exc)
                continue
            max_items = int(settings.get("max_items") or DEFAULT_MAX_ITEMS)
            last_window = self.outbox.last_window(user_name, destination)
            if not schedule.due(now=now, oldest=oldest, count=count, max_items=max_items,
                                last_window=last_window):
                continue
            items = self.outbox.held(user_name, destination, max_items)
            address = address_for(user, destination) or items[0].notification.address
            digest = self.renderer.render_digest(
                destination, user, [i.notification for i in items], address)
            if self.outbox.commit_digest(digest, items, schedule.window(now)):
                queued += 1
                self.on_queued(destination)
                log.info("digest of %d for %s on %s queued", len(items), user_name, destination)
        return queued

    def start(self) -> None:
        self._periodic.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._periodic.stop(timeout)
