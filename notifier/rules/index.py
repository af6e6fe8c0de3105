"""The rule index: from what a message is about to the rules that may match it.

Each enabled rule is filed under the keys its track kind looks at:

=========================  ==============================================
``artifacts-owned``        each tracked owner (default: the rule's user)
``artifacts-group-owned``  each tracked group
``artifacts-followed``     each followed artifact
``related-events``         the rule's user
``users-followed``         each followed user (a message's agent)
``topics``                 each glob, in a :class:`~.topics.TopicIndex`
=========================  ==============================================

Ownership is kept apart, as artifact -> owning users and artifact -> owning
groups, every artifact (package, container, module, flatpak) by its key
(:mod:`notifier.users.artifacts`). A message's candidates are then found
through its artifacts (-> owners -> rules, and -> followers), its usernames,
its agent and its topic, so the work per message depends on how many rules
it concerns, not on how many rules exist. Changing a rule touches only its own keys; changing an
owner touches one set, and no rule at all.

Memory: rules are shared objects (their strings interned, equal filters and
destination lists shared when loaded together); most keys hold a few rules,
kept in a tuple, and only crowded keys pay for a set.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import InputError, RuleError
from ..users.artifacts import FIELDS as ARTIFACT_FIELDS
from ..users.artifacts import KINDS as ARTIFACT_KINDS
from .model import Rule
from .topics import TopicIndex

#: a key's rules are kept in a tuple up to this many, in a set beyond
SMALL = 8

#: the rules filed under one key: a tuple while few (compact, and quick to
#: read), a set when many (quick to change)
Rules = tuple[Rule, ...] | set[Rule]


def _file(table: dict[str, Rules], keys: Iterable[str], rule: Rule) -> None:
    for key in keys:
        rules = table.get(key)
        if rules is None:
            table[key] = (rule,)
        elif type(rules) is tuple:
            table[key] = (*rules, rule) if len(rules) < SMALL else {*rules, rule}
        else:
            rules.add(rule)


def _unfile(table: dict[str, Rules], keys: Iterable[str], rule: Rule) -> None:
    for key in keys:
        rules = table.get(key)
        if rules is None:
            continue
        if type(rules) is tuple:
            left = tuple([r for r in rules if r is not rule])
            if left:
                table[key] = left
            else:
                del table[key]
        else:
            rules.discard(rule)
            if not rules:
                del table[key]
            elif len(rules) <= SMALL // 2:
                table[key] = tuple(rules)


#: the artifact kinds a record lists under a name of their own (packages come first)
_OTHER_KINDS = ARTIFACT_KINDS[1:]


#: one user's rules: a tuple while few (a dict costs three times the memory), a dict by name
#: when many
UserRules = tuple[Rule, ...] | dict[str, Rule]


def _named(rules: UserRules, name: str) -> Rule | None:
    if type(rules) is tuple:
        for rule in rules:
            if rule.name == name:
                return rule
        return None
    return rules.get(name)  # type: ignore[union-attr]


def _all(rules: UserRules) -> tuple[Rule, ...] | Iterable[Rule]:
    return rules if type(rules) is tuple else rules.values()  # type: ignore[union-attr]


class RuleIndex:
    """Rules by ``(user, name)``, enabled rules by the keys they track, and ownership."""

    def __init__(self) -> None:
        self._rules: dict[str, UserRules] = {}
        self._count = 0
        self._by_owner: dict[str, Rules] = {}
        self._by_group: dict[str, Rules] = {}
        self._by_package: dict[str, Rules] = {}
        self._by_user: dict[str, Rules] = {}
        self._by_agent: dict[str, Rules] = {}
        self._topics: TopicIndex[Rule] = TopicIndex()
        #: artifact key -> users who own it
        self.user_owners: dict[str, set[str]] = {}
        #: artifact key -> groups that own it
        self.group_owners: dict[str, set[str]] = {}

    # -- rules ---------------------------------------------------------------

    def __len__(self) -> int:
        """The number of rules, disabled ones included."""
        return self._count

    def __iter__(self) -> Iterator[Rule]:
        for rules in self._rules.values():
            yield from _all(rules)

    def get(self, user: str, name: str) -> Rule | None:
        """The rule ``name`` of ``user``, if there is one."""
        rules = self._rules.get(user)
        return None if rules is None else _named(rules, name)

    def rules_of(self, user: str) -> list[Rule]:
        """Every rule of ``user``."""
        return list(_all(self._rules.get(user, ())))

    def add(self, rule: Rule) -> None:
        """Add a rule; :class:`RuleError` if the user already has one by that name."""
        user = rule.user
        rules = self._rules.get(user)
        if rules is None:
            self._rules[sys.intern(user)] = (rule,)
        elif _named(rules, rule.name) is not None:
            raise RuleError(f"{user} already has a rule named {rule.name!r}")
        elif type(rules) is tuple:
            self._rules[user] = (*rules, rule) if len(rules) < SMALL else \
                {r.name: r for r in (*rules, rule)}
        else:
            rules[rule.name] = rule  # type: ignore[index]
        self._count += 1
        if not rule.disabled:
            self._file(rule)

    def load(self, rules: Iterable[Rule]) -> None:
        """Add many rules at once, as :meth:`add` does one by one, only quicker.

        Each key's rules are gathered in a list first, then kept as a tuple or
        a set once, rather than a tuple grown rule by rule.
        """
        gathered: dict[int, dict[str, list[Rule]]] = {}
        tables = {"artifacts-owned": self._by_owner, "artifacts-group-owned": self._by_group,
                  "artifacts-followed": self._by_package, "related-events": self._by_user,
                  "users-followed": self._by_agent}
        lists = {kind: gathered.setdefault(id(table), {}) for kind, table in tables.items()}
        topics = self._topics
        count = 0
        # A user's rules come together (as an index lists them): kept when the user changes.
        user: str | None = None
        mine: dict[str, Rule] = {}
        for rule in rules:
            if rule.user != user:
                if user is not None:
                    self._keep(user, mine)
                user, mine = rule.user, {}
            elif rule.name in mine:
                raise RuleError(f"{user} already has a rule named {rule.name!r}")
            mine[rule.name] = rule
            count += 1
            if rule.disabled:
                continue
            kind = rule.kind
            if kind == "topics":
                for pattern in rule.targets:
                    topics.add(pattern, rule)
                continue
            table = lists.get(kind)
            if table is None:
                raise ValueError(f"unknown track kind {kind!r}")  # parse_rule lets none through
            if kind == "related-events":
                keys: tuple[str, ...] = (user,)
            elif kind == "artifacts-owned":
                keys = rule.targets or (user,)
            else:
                keys = rule.targets
            for key in keys:
                found = table.get(key)
                if found is None:
                    table[key] = [rule]
                else:
                    found.append(rule)
        if user is not None:
            self._keep(user, mine)
        self._count += count
        for table in tables.values():
            for key, more in gathered[id(table)].items():
                rules_now = table.get(key)
                if rules_now is not None:  # the index was not empty
                    more = [*rules_now, *more]
                table[key] = tuple(more) if len(more) <= SMALL else set(more)

    def _keep(self, user: str, rules: dict[str, Rule]) -> None:
        before = self._rules.get(user)
        if before is not None:  # the user came before, or the index was not empty
            old = {r.name: r for r in _all(before)}
            twice = old.keys() & rules.keys()
            if twice:
                raise RuleError(f"{user} already has a rule named {min(twice)!r}")
            rules = {**old, **rules}
        self._rules[sys.intern(user)] = tuple(rules.values()) if len(rules) <= SMALL else rules

    def replace(self, rule: Rule) -> Rule | None:
        """Add a rule, replacing the user's rule of the same name; return the old one."""
        old = self.remove(rule.user, rule.name)
        self.add(rule)
        return old

    def remove(self, user: str, name: str) -> Rule | None:
        """Remove a rule; return it, or ``None`` if there was none."""
        rules = self._rules.get(user)
        rule = None if rules is None else _named(rules, name)
        if rule is None:
            return None
        if type(rules) is tuple:
            left = tuple([r for r in rules if r is not rule])
            if left:
                self._rules[user] = left
            else:
                del self._rules[user]
        else:
            del rules[name]  # type: ignore[union-attr]
            if len(rules) <= SMALL // 2:  # type: ignore[arg-type]
                self._rules[user] = tuple(rules.values())  # type: ignore[union-attr]
        self._count -= 1
        if not rule.disabled:
            self._unfile(rule)
        return rule

    def _table(self, rule: Rule) -> tuple[dict[str, Rules], tuple[str, ...]]:
        kind = rule.kind
        if kind == "artifacts-owned":
            return self._by_owner, rule.owners
        if kind == "artifacts-group-owned":
            return self._by_group, rule.targets
        if kind == "artifacts-followed":
            return self._by_package, rule.targets
        if kind == "related-events":
            return self._by_user, (rule.user,)
        if kind == "users-followed":
            return self._by_agent, rule.targets
        raise ValueError(f"unknown track kind {kind!r}")  # parse_rule lets none through

    def _file(self, rule: Rule) -> None:
        if rule.kind == "topics":
            for pattern in rule.targets:
                self._topics.add(pattern, rule)
        else:
            _file(*self._table(rule), rule)

    def _unfile(self, rule: Rule) -> None:
        if rule.kind == "topics":
            for pattern in rule.targets:
                self._topics.discard(pattern, rule)
        else:
            _unfile(*self._table(rule), rule)

    # -- ownership -----------------------------------------------------------

    def _owners(self, kind: str) -> dict[str, set[str]]:
        if kind == "user":
            return self.user_owners
        if kind == "group":
            return self.group_owners
        raise InputError(f"owner kind must be 'user' or 'group', not {kind!r}")

    def add_owner(self, package: str, kind: str, name: str) -> bool:
        """Record that ``name`` (a user or a group, by ``kind``) owns ``package``.

        Returns whether it is new.
        """
        table = self._owners(kind)
        owners = table.get(package)
        if owners is None:
            table[sys.intern(package)] = {sys.intern(name)}
            return True
        if name in owners:
            return False
        owners.add(sys.intern(name))
        return True

    def remove_owner(self, package: str, kind: str, name: str) -> bool:
        """Forget that ``name`` owns ``package``; returns whether it did."""
        table = self._owners(kind)
        owners = table.get(package)
        if owners is None or name not in owners:
            return False
        owners.discard(name)
        if not owners:
            del table[package]
        return True

    # -- lookup --------------------------------------------------------------

    def candidates(self, record: Mapping[str, Any]) -> set[Rule]:
        """The enabled rules whose track matches the message (filters not applied)."""
        found: set[Rule] = set()
        update = found.update
        packages = record.get("packages")
        if packages:
            self._artifact_candidates(packages, update)
        for kind in _OTHER_KINDS:
            names = record.get(ARTIFACT_FIELDS[kind])
            if names:
                self._artifact_candidates([f"{kind}/{name}" for name in names], update)
        usernames = record.get("usernames")
        if usernames:
            by_user = self._by_user
            for user in usernames:
                rules = by_user.get(user)
                if rules:
                    update(rules)
        agent = record.get("agent")
        if agent is not None:
            rules = self._by_agent.get(agent)
            if rules:
                update(rules)
        self._topics.lookup(record.get("topic") or "", found)
        return found

    def _artifact_candidates(self, keys: Iterable[str], update: Any) -> None:
        """Add the rules tracking these artifacts (by key): through owners, and followed."""
        user_owners = self.user_owners
        group_owners = self.group_owners
        by_owner = self._by_owner
        by_group = self._by_group
        by_package = self._by_package
        for key in keys:
            owners = user_owners.get(key)
            if owners:
                for owner in owners:
                    rules = by_owner.get(owner)
                    if rules:
                        update(rules)
            owners = group_owners.get(key)
            if owners:
                for owner in owners:
                    rules = by_group.get(owner)
                    if rules:
                        update(rules)
            rules = by_package.get(key)
            if rules:
                update(rules)

    def stats(self) -> dict[str, int]:
        """Sizes of the parts of the index, for logs and the benchmark."""
        return {
            "rules": self._count,
            "users": len(self._rules),
            "owner keys": len(self._by_owner),
            "group keys": len(self._by_group),
            "package keys": len(self._by_package),
            "username keys": len(self._by_user),
            "agent keys": len(self._by_agent),
            "owned packages": len(self.user_owners.keys() | self.group_owners.keys()),
            **{f"topic globs ({k})": v for k, v in self._topics.stats().items()},
        }
