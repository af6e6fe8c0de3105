"""The reference matcher: every rule checked against every message, literally.

It aims at nothing but being obviously right: its cost grows with the number
of rules, as FMN's does. The tests check the indexed
:class:`~.matcher.Matcher` against it, and the match benchmark uses it as the
baseline. It offers the same methods as the indexed matcher.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InputError, RuleError
from .model import Recipient, Rule
from .semantics import rule_matches


class ReferenceMatcher:
    """Keeps rules in a dict and owners in sets; matching loops over all rules."""

    def __init__(self, rules: Iterable[Rule] = (),
                 ownership: Iterable[tuple[str, str, str]] = ()) -> None:
        self.rules: dict[tuple[str, str], Rule] = {}
        self.user_owners: dict[str, set[str]] = {}
        self.group_owners: dict[str, set[str]] = {}
        for rule in rules:
            self.add_rule(rule)
        for package, kind, name in ownership:
            self.add_owner(package, kind, name)

    def add_rule(self, rule: Rule) -> None:
        """Add a new rule; :class:`RuleError` if its user has one by that name."""
        if rule.key in self.rules:
            raise RuleError(f"{rule.user} already has a rule named {rule.name!r}")
        self.rules[rule.key] = rule

    def replace_rule(self, rule: Rule) -> Rule | None:
        """Add or replace a rule; return the old one."""
        old = self.rules.get(rule.key)
        self.rules[rule.key] = rule
        return old

    def remove_rule(self, user: str, name: str) -> Rule | None:
        """Remove a rule; return it, or ``None``."""
        return self.rules.pop((user, name), None)

    def _owners(self, kind: str) -> dict[str, set[str]]:
        if kind not in ("user", "group"):
            raise InputError(f"owner kind must be 'user' or 'group', not {kind!r}")
        return self.user_owners if kind == "user" else self.group_owners

    def add_owner(self, package: str, kind: str, name: str) -> bool:
        """Record an owner; whether it is new."""
        owners = self._owners(kind).setdefault(package, set())
        new = name not in owners
        owners.add(name)
        return new

    def remove_owner(self, package: str, kind: str, name: str) -> bool:
        """Forget an owner; whether it was there."""
        owners = self._owners(kind).get(package, set())
        if name not in owners:
            return False
        owners.discard(name)
        return True

    def match(self, record: Mapping[str, Any], explain: bool = False) -> list[Recipient]:
        """The recipients of a described message, sorted by user."""
        matched: dict[str, dict[str, tuple[Rule, str]]] = {}
        for rule in self.rules.values():
            reason = rule_matches(rule, record, self.user_owners, self.group_owners)
            if reason is not None:
                matched.setdefault(rule.user, {})[rule.name] = (rule, reason)
        out = []
        for user in sorted(matched):
            names = sorted(matched[user])
            destinations = sorted({d for rule, _ in matched[user].values()
                                   for d in rule.destinations})
            why = {n: matched[user][n][1] for n in names} if explain else None
            out.append(Recipient(user, tuple(names), tuple(destinations), why))
        return out
