"""Digests: held notifications go out together, on the user's schedule.

Every few seconds the scheduler looks at what is held per user and
destination. When a digest is due (see :mod:`.schedule`) it renders one
digest from the held items, grouped by app and package, newest first, and
queues it while marking the items digested, in one transaction: items
survive restarts and none goes out twice.

Notifications held for the user's quiet hours (see :mod:`.settings`) go to a
destination without a digest of its own: they go out together, as one
digest, on the first pass after the quiet hours end. Whether they have ended
is read from the settings and the clock alone, so a restart changes nothing.
A destination with a digest of its own keeps its own schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import NotifierError, StorageError
from ..notification import Notification
from ..storage.outbox import Outbox
from ..users.settings import MAX_DIGEST_ITEMS
from .periodic import Periodic
from .schedule import Schedule
from .settings import DEFAULT_MAX_ITEMS, address_for, digest_settings, quiet_hours

log = logging.getLogger(__name__)

#: how often what is held goes out when the user's digest settings cannot be used
DEFAULT_EVERY = "1h"


class RendersDigests(Protocol):
    def render_digest(self, destination: str, user: dict[str, Any],
                      items: list[Notification], address: str) -> Notification: ...


class DigestScheduler:
    """Queues due digests: :meth:`run_once` is one pass; as a supervised part, ``digests``.

    One user's digest that fails (settings that do not parse, a render
    error, anything) is logged once per user, destination and problem, and
    never holds up anyone else's. ``every`` or ``max_items`` settings that
    do not parse fall back to the defaults (``1h``, 100), so that user's
    held notifications still go out. ``on_queued(destination)`` is told of
    each digest queued; ``on_result(destination, outcome, n)`` counts, for
    the metrics, the held items put into a digest as ``sent`` and the digest
    itself as ``queued``. ``clock`` tells the time quiet hours are read
    against (the outbox's clock unless given).
    """

    name = "digests"

    def __init__(self, outbox: Outbox, renderer: RendersDigests,
                 users: Callable[[str], dict[str, Any] | None], *, interval: float = 1.0,
                 on_queued: Callable[[str], None] | None = None,
                 on_result: Callable[[str, str, int], None] | None = None,
                 clock: Callable[[], float] | None = None):
        self.outbox = outbox
        self.clock = clock
        self.renderer = renderer
        self.users = users
        self.interval = interval
        self.on_queued = on_queued or (lambda destination: None)
        self.on_result = on_result or (lambda destination, outcome, n: None)
        self._periodic = Periodic("digests", interval, self.run_once)
        #: (user, destination, "settings" or "digest") -> the problem last logged for it
        self._problems: dict[tuple[str, str, str], str] = {}

    def run_once(self) -> int:
        """Queue every digest that is due now; return how many."""
        queued = 0
        now = self.outbox.clock()
        groups = self.outbox.held_groups()
        for user_name, destination, count, oldest in groups:
            key = (user_name, destination)
            try:
                if self._one(user_name, destination, count, oldest, now):
                    queued += 1
            except StorageError:
                raise  # the database, not this user: the whole pass waits for it
            except Exception as exc:  # one user's digest must never stop the others'
                self._report((*key, "digest"), f"{type(exc).__name__}: {exc}", exc)
            else:
                self._report((*key, "digest"), None)
        # Forget the problems of digests no longer held (sent, or the user removed).
        held = {(user, destination) for user, destination, _n, _o in groups}
        for key in [k for k in self._problems if k[:2] not in held]:
            del self._problems[key]
        return queued

    def _one(self, user_name: str, destination: str, count: int, oldest: float,
             now: float) -> bool:
        """Queue the digest of one user and destination if it is due; whether it was."""
        user = self.users(user_name)
        if user is None:
            return False
        last_window = self.outbox.last_window(user_name, destination)
        quiet = None
        if digest_settings(user, destination) is None:
            quiet = quiet_hours(user)
        if quiet is not None:
            # Held for quiet hours: all of it goes once they are over.
            if quiet.active((self.clock or self.outbox.clock)()):
                return False
            max_items = MAX_DIGEST_ITEMS
            window = -1 if last_window is None else last_window  # the digest's, untouched
        else:
            schedule, max_items = self._settings(user_name, destination, user)
            if not schedule.due(now=now, oldest=oldest, count=count, max_items=max_items,
                                last_window=last_window):
                return False
            window = schedule.window(now)
        items = self.outbox.held(user_name, destination, max_items)
        if not items:
            return False
        address = address_for(user, destination) or items[0].notification.address
        digest = self.renderer.render_digest(
            destination, user, [i.notification for i in items], address)
        # Another worker may have queued this digest since last_window was read: then
        # nothing is queued here.
        if not self.outbox.commit_digest(digest, items, window, seen_window=last_window):
            return False
        self.on_queued(destination)
        self.on_result(destination, "sent", len(items))
        self.on_result(destination, "queued", 1)
        log.info("digest of %d for %s on %s queued%s", len(items), user_name, destination,
                 " (quiet hours are over)" if quiet is not None else "")
        return True

    def _settings(self, user_name: str, destination: str, user: dict[str, Any]
                  ) -> tuple[Schedule, int]:
        """The schedule and ``max_items``; the defaults for what cannot be used (logged once).

        Settings read as :func:`~.settings.digest_settings` reads them: no
        usable digest (turned off after these were held, or settings that do
        not parse) sends what is held on the defaults.
        """
        problems: list[str] = []
        settings = digest_settings(user, destination, problems.append)
        if settings is None:
            schedule, max_items = Schedule.parse(DEFAULT_EVERY), DEFAULT_MAX_ITEMS
        else:
            schedule, max_items = Schedule.parse(settings["every"]), settings["max_items"]
        key = (user_name, destination, "settings")
        if problems:
            self._report(key, "; ".join(problems) + f"; what is held goes out using every "
                         f"{DEFAULT_EVERY!r}, max_items {DEFAULT_MAX_ITEMS}")
        else:
            self._report(key, None)
        return schedule, max_items

    def _report(self, key: tuple[str, str, str], problem: str | None,
                exc: BaseException | None = None) -> None:
        """Log ``problem`` for ``key`` (user, destination, what) once, until it changes."""
        known = self._problems.get(key)
        if problem is None:
            if known is not None:
                del self._problems[key]
                log.info("digest for %s on %s: %s works again", key[0], key[1], key[2])
            return
        if problem == known:
            return
        self._problems[key] = problem
        if key[2] == "settings":
            log.error("digest for %s on %s: %s", key[0], key[1], problem)
            return
        trace = exc if exc is not None and not isinstance(exc, NotifierError) else None
        log.error("digest for %s on %s failed: %s (its held notifications wait; other "
                  "digests go on)", key[0], key[1], problem, exc_info=trace)

    # -- a supervised part ---------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        """Queue due digests every ``interval`` seconds until ``stopping`` is set."""
        self._periodic.run(stopping)

    def interrupt(self) -> None:
        self._periodic.interrupt()

    def stalled(self) -> str | None:
        return self._periodic.stalled()
