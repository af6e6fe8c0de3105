"""Muting and snoozing rules, by id: what a person (or an admin) switches without editing.

A muted rule is a disabled one (``disabled`` true, in its column and its
document): it matches nothing until it is unmuted. A snoozed rule carries
``snoozed_until`` (seconds since the epoch) in its document: the matcher
skips it until then, and it matches again on its own afterwards, with no
change needed. Every switch is one transaction that also appends the rule to
the change log, so a running ``notifier serve`` applies it within its next
poll (see :mod:`notifier.service.changes`). Email's one-click unsubscribe is
:meth:`Mutes.mute_named`, the same switch.

Each call can be limited to one ``user``'s rules: another user's rule is then
answered as if it did not exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from .schema import rules as rules_table
from .store import Store


@dataclass(frozen=True)
class RuleState:
    """A stored rule's id, owner and name, and whether it is muted or snoozed."""

    id: int
    user: str
    name: str
    disabled: bool
    #: the rule sleeps until then (seconds since the epoch); None: not snoozed
    snoozed_until: float | None
    #: the rule as stored (its JSON form)
    document: dict[str, Any]

    def snoozed(self, now: float) -> bool:
        """Whether the rule is snoozed at ``now``."""
        return self.snoozed_until is not None and self.snoozed_until > now

    def to_dict(self, now: float) -> dict[str, Any]:
        """The JSON form: the rule's id, user, name and switches (an ended snooze is none)."""
        return {"id": self.id, "user": self.user, "name": self.name,
                "disabled": self.disabled,
                "snoozed_until": self.snoozed_until if self.snoozed(now) else None}


def _state(row: Any) -> RuleState:
    document = {**row.document, "user": row.username, "name": row.name,
                "disabled": bool(row.disabled)}
    until = document.get("snoozed_until")
    snoozed = float(until) if isinstance(until, int | float) and not isinstance(
        until, bool) else None
    return RuleState(row.id, row.username, row.name, bool(row.disabled), snoozed, document)


class Mutes:
    """Rule switches on a :class:`~notifier.storage.Store`'s database."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    # -- reading ---------------------------------------------------------------

    def get(self, rule_id: int, user: str | None = None) -> RuleState | None:
        """Rule ``rule_id`` (only if it is ``user``'s, when given), or None."""
        query = select(rules_table).where(rules_table.c.id == rule_id)
        if user is not None:
            query = query.where(rules_table.c.username == user)
        with self.store._transaction(f"read rule {rule_id}", write=False) as conn:
            row = conn.execute(query).first()
        return None if row is None else _state(row)

    def find(self, user: str, name: str) -> RuleState | None:
        """The rule ``name`` of ``user``, or None."""
        with self.store._transaction(f"read rule {name!r} of {user!r}", write=False) as conn:
            row = conn.execute(select(rules_table).where(
                rules_table.c.username == user, rules_table.c.name == name)).first()
        return None if row is None else _state(row)

    def list(self, user: str | None = None) -> list[RuleState]:
        """Stored rules (``user``'s, or everyone's), by user then name."""
        query = select(rules_table).order_by(rules_table.c.username, rules_table.c.name)
        if user is not None:
            query = query.where(rules_table.c.username == user)
        with self.store._transaction("list rules", write=False) as conn:
            return [_state(row) for row in conn.execute(query)]

    # -- switching -------------------------------------------------------------

    def mute(self, rule_id: int, user: str | None = None) -> RuleState | None:
        """Disable the rule until it is unmuted (ending any snooze); None: no such rule."""
        return self._switch(rule_id, user, disabled=True, until=None)

    def snooze(self, rule_id: int, seconds: float, user: str | None = None
               ) -> RuleState | None:
        """Silence the rule for ``seconds`` from now (it is enabled, if it was muted)."""
        return self._switch(rule_id, user, disabled=False, until=self.clock() + seconds)

    def unmute(self, rule_id: int, user: str | None = None) -> RuleState | None:
        """Enable the rule, and end its snooze."""
        return self._switch(rule_id, user, disabled=False, until=None)

    def mute_named(self, user: str, name: str) -> RuleState | None:
        """:meth:`mute` the rule ``name`` of ``user`` (email's one-click unsubscribe)."""
        found = self.find(user, name)
        return None if found is None else self.mute(found.id, user)

    def _switch(self, rule_id: int, user: str | None, *, disabled: bool,
                until: float | None) -> RuleState | None:
        query = select(rules_table).where(rules_table.c.id == rule_id)
        if user is not None:
            query = query.where(rules_table.c.username == user)
        with self.store._transaction(f"switch rule {rule_id}") as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            return self._write(conn, row, disabled, until)

    def _write(self, conn: Connection, row: Any, disabled: bool,
               until: float | None) -> RuleState:
        document = {key: value for key, value in row.document.items()
                    if key != "snoozed_until"}
        document["disabled"] = disabled
        if until is not None:
            document["snoozed_until"] = until
        conn.execute(update(rules_table).where(rules_table.c.id == row.id).values(
            disabled=disabled, document=document, updated_at=self.clock()))
        self.store._log_changes(conn, [("rule", "upsert", row.username, row.name, None)])
        return RuleState(row.id, row.username, row.name, disabled, until,
                         {**document, "user": row.username, "name": row.name})
