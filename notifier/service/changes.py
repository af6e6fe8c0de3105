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
from typing import Any

from ..delivery.periodic import Periodic
from ..errors import NotifierError, RuleError

log = logging.getLogger(__name__)


class ChangeWatcher:
    """Follows the change log from where it stood at start."""

    def __init__(self, store: Any, matcher: Any, users: Any, interval: float = 1.0):
        self.store = store
        self.matcher = matcher
        self.users = users
        self.interval = interval
        self._lock = threading.Lock()
        self._periodic = Periodic("changes", interval, self._catch_up)
        self.seen = store.last_change()

    def poll(self) -> int:
        """Apply every change since the last poll; return how many."""
        from ..rules.validation import backend_names, parse_rule

        with self._lock:
            rows = self.store.changes_after(self.seen, 10000)
            # Listing the backends reads entry points: once a poll, not once a rule.
            destinations = backend_names() if rows else []
            for row in rows:
                try:
                    self._apply(row, parse_rule, destinations)
                except (NotifierError, ValueError) as exc:
                    log.error("could not apply change %s: %s", row.seq, exc)
                self.seen = row.seq
            return len(rows)

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
        """Delete the changes this service has applied (other services may lag: keep a day)."""
        return self.store.prune_changes(self.seen, 86400)

    def _catch_up(self) -> None:
        while self.poll() >= 10000:
            pass

    def start(self) -> None:
        self._periodic.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._periodic.stop(timeout)
