"""Applying rule, owner and user changes made by other processes to a running matcher.

Every change the :class:`~notifier.storage.Store` makes to rules, owners or
users is appended to the ``changes`` table. The watcher reads what is new
every second and applies each change to the matcher in place (a rule
replaced or removed, an owner added or removed) or forgets the cached user,
so a ``notifier rules import`` reaches the running service without a rebuild.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..delivery.periodic import Periodic
from ..errors import NotifierError, RuleError

log = logging.getLogger(__name__)

#: failed tries of one change after which the matcher is rebuilt from the database
REBUILD_AFTER = 5


class ChangeWatcher:
    """Follows the change log from where it stood at start; a supervised part, ``changes``.

    A change that fails to apply (the database away while reading the rule, a
    bug) is not marked seen: the next poll tries it again, and the changes
    after it wait, so they apply in order. The failure is logged once, and
    :meth:`stalled` reports it, so health shows the running matcher may differ
    from the database. After :data:`REBUILD_AFTER` failed tries the matcher is
    rebuilt from the database (every rule and owner, as at start), which makes
    it match the database again and covers every change up to then. A stored
    rule that does not validate is left out of the matcher, as at start, and
    logged: that is not a failure to apply.
    """

    name = "changes"

    def __init__(self, store: Any, matcher: Any, users: Any, interval: float = 1.0):
        self.store = store
        self.matcher = matcher
        self.users = users
        self.interval = interval
        self._lock = threading.Lock()
        self._periodic = Periodic("changes", interval, self._catch_up)
        # The loaded matcher says which change it reflects (a snapshot may be older).
        position = getattr(matcher, "position", None)
        self.seen = store.last_change() if position is None else position
        #: the change that failed to apply: (seq, tries, problem, since), else None
        self.failing: tuple[int, int, str, float] | None = None

    def poll(self) -> int:
        """Apply every change since the last poll, in order; return how many were applied.

        Stops at a change that fails to apply; it is tried again at the next poll.
        """
        from ..rules.validation import backend_names, parse_rule

        with self._lock:
            rows = self.store.changes_after(self.seen, 10000)
            # Listing the backends reads entry points: once a poll, not once a rule.
            destinations = backend_names() if rows else []
            applied = 0
            for row in rows:
                try:
                    self._apply(row, parse_rule, destinations)
                except RuleError as exc:
                    # Left out of the matcher, as a rule that does not validate is at start.
                    log.error("change %s: the stored rule is left out: %s", row.seq, exc)
                except Exception as exc:  # one change must not stop the change log
                    self._failed(row, exc)
                    break
                self.seen = row.seq
                applied += 1
                if self.failing is not None:
                    log.info("change %s applied after %d failed tries", row.seq,
                             self.failing[1])
                    self.failing = None
            return applied

    def _failed(self, row: Any, exc: Exception) -> None:
        problem = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NotifierError) \
            else str(exc)
        seq, tries, known, since = self.failing or (row.seq, 0, None, time.monotonic())
        if seq != row.seq:
            tries, known, since = 0, None, time.monotonic()
        tries += 1
        self.failing = (row.seq, tries, problem, since)
        if problem != known:
            trace = exc if not isinstance(exc, NotifierError) else None
            log.error("could not apply change %s (%s %s %s); trying again: %s", row.seq,
                      row.kind, row.op, "/".join(k for k in (row.key1, row.key2, row.key3) if k),
                      problem, exc_info=trace)
        if tries >= REBUILD_AFTER:
            self.rebuild(f"change {row.seq} failed to apply {tries} times: {problem}")

    def rebuild(self, why: str) -> None:
        """Rebuild the matcher from the database, as at start; forget cached users."""
        from ..rules.matcher import Matcher

        upto = self.store.last_change()  # first: what changes after this is applied again
        fresh = Matcher.from_store(self.store, on_invalid=lambda problem: log.error(
            "a stored rule is left out: %s", problem), snapshot=False)
        self.matcher.replace_all(fresh)
        self.users.forget()
        self.seen = max(self.seen, upto)
        self.failing = None
        log.warning("rebuilt the matcher from the database (%s)", why)

    def _apply(self, row: Any, parse_rule: Any, destinations: list[str]) -> None:
        if row.kind == "rule":
            user, name = row.key1, row.key2
            document = self.store.get_rule(user, name) if row.op == "upsert" else None
            if document is None:
                self.matcher.remove_rule(user, name)
                return
            try:
                rule = parse_rule(document, source="database", destinations=destinations,
                                  ignore_unknown=True)
            except RuleError:
                self.matcher.remove_rule(user, name)
                raise
            self.matcher.replace_rule(rule)
        elif row.kind == "owner":
            if row.op == "add":
                self.matcher.add_owner(row.key1, row.key2, row.key3)
            else:
                self.matcher.remove_owner(row.key1, row.key2, row.key3)
        elif row.kind == "user":
            self.users.forget(row.key1)

    def prune(self) -> int:
        """Delete the changes this service has applied (other services may lag: keep a day).

        First the rules snapshot is brought up to what the matcher holds, and
        the change it was made at is kept, so the next start can use it.
        """
        from ..rules.loading import refresh
        from ..rules.validation import backend_names

        # The matcher holds at least every change up to ``seen`` (later ones are applied
        # again at the next start, which changes nothing): no need to stop the polls.
        seen = self.seen
        kept = refresh(self.store, self.matcher, backend_names(), seen)
        upto = seen if kept is None else min(seen, kept - 1)
        return self.store.prune_changes(upto, 86400)

    def _catch_up(self) -> None:
        while self.poll() >= 10000:
            pass

    # -- a supervised part ---------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        """Apply new changes every ``interval`` seconds until ``stopping`` is set."""
        self._periodic.run(stopping)

    def interrupt(self) -> None:
        self._periodic.interrupt()

    def stalled(self) -> str | None:
        """Why the running matcher may differ from the database now, or None."""
        failing = self.failing
        if failing is not None:
            seq, tries, problem, since = failing
            return (f"change {seq} has failed to apply {tries} times in "
                    f"{time.monotonic() - since:.0f} s (the matcher may differ from the "
                    f"database until it applies): {problem}")
        return self._periodic.stalled()
