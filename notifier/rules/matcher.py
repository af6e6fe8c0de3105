"""The matcher: who gets a message, through which rules, on which destinations.

:class:`Matcher` looks up a message's candidate rules in a
:class:`~.index.RuleIndex`, then applies each candidate's filters. Rules and
package owners can be changed while it runs (``add_rule``, ``replace_rule``,
``remove_rule``, ``add_owner``, ``remove_owner``); each change is applied to
the index in place, without a rebuild. A snoozed rule stays in the index
and is skipped while its ``snoozed_until`` lies ahead, so it wakes on time
with no change to apply. One thread may make changes while
another matches: a lock keeps each change and each match whole (a match
waits for a change, a few microseconds, and the other way round).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any, Protocol

from ..errors import RuleError
from . import loading
from .index import RuleIndex
from .model import DEFAULT_FILTERS, DEFAULT_SEVERITIES, Recipient, Rule
from .semantics import track_reason
from .validation import backend_names, parse_rule


class RuleSource(Protocol):
    """What :meth:`Matcher.from_store` needs of :class:`notifier.storage.Store`."""

    def list_rules(self, user: str | None = None) -> list[dict[str, Any]]: ...

    def last_change(self) -> int: ...

    def ownership(self) -> Iterable[tuple[str, str, str]]: ...


def _name(rule: Rule) -> str:
    return rule.name


class Matcher:
    """Matches described messages against every rule, through an index."""

    def __init__(self, rules: Iterable[Rule] = (),
                 ownership: Iterable[tuple[str, str, str]] = ()) -> None:
        #: the index itself; use the methods below to change it, they take the lock
        self.index = RuleIndex()
        self._lock = threading.Lock()
        #: the change-log entry the rules and owners reflect, when loaded from the database
        self.position: int | None = None
        self.index.load(rules)
        for package, kind, name in ownership:
            self.index.add_owner(package, kind, name)

    @classmethod
    def from_store(cls, store: RuleSource, *,
                   owner_filter: Callable[[str, str, str], bool] | None = None,
                   destinations: Collection[str] | None = None,
                   on_invalid: Callable[[str], None] | None = None,
                   progress: Callable[[list[Any]], Iterable[Any]] | None = None,
                   snapshot: bool = True) -> Matcher:
        """Load every rule and owner from the database.

        From the stored snapshot of the index when it is current (see
        :mod:`.loading`), else from the rules table, writing a fresh snapshot;
        ``snapshot=False`` (or an ``owner_filter``) reads the tables only.

        A stored rule that no longer validates (say its destination's backend
        is gone) is a :class:`RuleError` naming it, all such rules listed; or,
        with ``on_invalid``, that function gets each one's problems and the
        rule is left out. ``owner_filter(package, kind, name)`` can leave out
        owners no rule needs. ``progress``, given the list of stored rules,
        returns them as they are loaded (a progress bar, say).
        """
        if destinations is None:
            destinations = backend_names()
        use_snapshot = snapshot and owner_filter is None and loading.enabled(store)
        if use_snapshot:
            loaded = loading.from_snapshot(cls, store, destinations,  # type: ignore[arg-type]
                                           on_invalid)
            if loaded is not None:
                return loaded
        position = store.last_change()  # first: what changes after it is applied again
        shared: dict[Any, Any] = {}
        matcher = cls()
        matcher.position = position
        problems = []
        stored = store.list_rules()
        for data in progress(stored) if progress is not None else stored:
            where = "database"
            if isinstance(data, dict):
                where = f"database, user {data.get('user')!r}"
            try:
                rule = parse_rule(data, source=where, destinations=destinations,
                                  shared=shared, ignore_unknown=True)
            except RuleError as exc:
                if on_invalid is not None:
                    on_invalid(str(exc))
                else:
                    problems.append(str(exc))
                continue
            matcher.add_rule(rule)
        if problems:
            raise RuleError(f"{len(problems)} stored rule(s) are invalid:\n"
                            + "\n".join(problems))
        for package, kind, name in store.ownership():
            if owner_filter is None or owner_filter(package, kind, name):
                matcher.add_owner(package, kind, name)
        if use_snapshot:
            loading.save(store, matcher, destinations)  # type: ignore[arg-type]
        return matcher

    # -- changes -------------------------------------------------------------

    def add_rule(self, rule: Rule) -> None:
        """Add a new rule; :class:`RuleError` if its user has one by that name."""
        with self._lock:
            self.index.add(rule)

    def replace_rule(self, rule: Rule) -> Rule | None:
        """Add a rule or replace the user's rule of that name; return the old one."""
        with self._lock:
            return self.index.replace(rule)

    def remove_rule(self, user: str, name: str) -> Rule | None:
        """Remove a rule; return it, or ``None`` if there was none."""
        with self._lock:
            return self.index.remove(user, name)

    def replace_all(self, other: Matcher) -> None:
        """Take ``other``'s rules and owners in place of all of this one's (a rebuild)."""
        with self._lock:
            self.index = other.index
            self.position = other.position

    def rules(self) -> list[Rule]:
        """Every rule, disabled ones included, as they are now."""
        with self._lock:
            return list(self.index)

    def export(self) -> tuple[list[Rule], dict[str, tuple[str, ...]],
                              dict[str, tuple[str, ...]]]:
        """The rules and the owners (package -> users, package -> groups), as they are now.

        Rules are immutable, so only the containers are copied, under the lock.
        """
        with self._lock:
            index = self.index
            return (list(index), {p: tuple(o) for p, o in index.user_owners.items()},
                    {p: tuple(o) for p, o in index.group_owners.items()})

    def add_owner(self, package: str, kind: str, name: str) -> bool:
        """``name`` (``kind`` "user" or "group") now owns ``package``; whether it is new."""
        with self._lock:
            return self.index.add_owner(package, kind, name)

    def remove_owner(self, package: str, kind: str, name: str) -> bool:
        """``name`` no longer owns ``package``; whether it did."""
        with self._lock:
            return self.index.remove_owner(package, kind, name)

    # -- matching ------------------------------------------------------------

    def match(self, record: Mapping[str, Any], explain: bool = False) -> list[Recipient]:
        """The recipients of a described message, sorted by user.

        With ``explain``, each recipient carries why each of its rules matched.
        """
        with self._lock:
            return self._match(record, explain)

    def _match(self, record: Mapping[str, Any], explain: bool) -> list[Recipient]:
        found = self.index.candidates(record)
        if not found:
            return []
        agent = record.get("agent")
        severity = record.get("severity") or "info"
        # Rules with the default filters (most of them) need one test, when
        # the severity is a default one; otherwise they fail like any other.
        default = DEFAULT_FILTERS if severity in DEFAULT_SEVERITIES else None
        now = time.time()  # a snoozed rule is skipped until its time
        app: str | None = None
        # user -> their first matching rule; users with several also go in ``multi``
        first: dict[str, Rule] = {}
        keep = first.setdefault
        multi: dict[str, list[Rule]] | None = None
        for rule in found:
            if rule.snoozed_until is not None and rule.snoozed_until > now:
                continue
            f = rule.filters
            if f is default:
                if agent == rule.user:
                    continue
            else:
                if severity not in f.severities:
                    continue
                if not f.my_actions and agent == rule.user:
                    continue
                if f.applications or f.excluded_applications:
                    if app is None:
                        app = (record.get("app") or "").lower()
                    if f.applications and app not in f.applications:
                        continue
                    if app in f.excluded_applications:
                        continue
                if f.topic is not None and not fnmatchcase(record.get("topic") or "", f.topic):
                    continue
            kept = keep(rule.user, rule)
            if kept is not rule:
                if multi is None:
                    multi = {}
                more = multi.get(rule.user)
                if more is None:
                    multi[rule.user] = [kept, rule]
                else:
                    more.append(rule)
        out: list[Recipient] = []
        append = out.append
        new = tuple.__new__
        for user in sorted(first):
            if multi is not None and user in multi:
                rules = multi[user]
                rules.sort(key=_name)
                union: set[str] = set()
                for rule in rules:
                    union.update(rule.destinations)
                names = tuple([r.name for r in rules])
                destinations = tuple(sorted(union))
            else:
                rule = first[user]
                if not explain:
                    append(new(Recipient, (user, (rule.name,), rule.destinations, None)))
                    continue
                rules = [rule]
                names, destinations = (rule.name,), rule.destinations
            why = self._why(rules, record) if explain else None
            append(new(Recipient, (user, names, destinations, why)))
        return out

    def _why(self, rules: list[Rule], record: Mapping[str, Any]) -> dict[str, str]:
        index = self.index
        why = {}
        for rule in rules:
            reason = track_reason(rule, record, index.user_owners, index.group_owners)
            why[rule.name] = reason or "matched"
        return why
