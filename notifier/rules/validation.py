"""Reading rules from JSON: every field checked, defaults filled, all problems reported.

A rule in JSON::

    {"user": "alice", "name": "My packages", "disabled": false,
     "track": {"kind": "artifacts-owned"},
     "filters": {"applications": [], "excluded_applications": [],
                 "severities": ["info", "warning", "error"],
                 "my_actions": false, "topic": null},
     "destinations": ["email", "irc"]}

``user``, ``name``, ``track`` (with its ``kind``) and ``destinations`` are
required; ``disabled`` defaults to false, ``snoozed_until`` (seconds since
the epoch: the rule matches nothing until then) to null, and each missing
filter takes its default. Lists of names are de-duplicated and sorted; application names are
compared in lower case. An unknown key, kind, severity or destination is
reported with the nearest valid word.

The ``packages`` that ``artifacts-followed`` follows are artifacts of any
kind (:mod:`notifier.users.artifacts`): a package by its bare name
(``kernel``, or ``rpms/kernel``), the others as ``containers/NAME``,
``modules/NAME`` and ``flatpaks/NAME`` (dist-git's ``container/NAME`` too).
They are kept by key, so ``rpms/kernel`` is read as ``kernel`` and
``container/x`` as ``containers/x``; an unknown kind is reported with the
nearest one.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Collection, Iterable
from typing import Any

from ..errors import RuleError
from ..inputs import read_json_file
from ..users import artifacts
from .model import (
    DEFAULT_FILTERS,
    DEFAULT_SEVERITIES,
    OPTIONAL_TARGETS,
    SEVERITIES,
    TRACK_FIELDS,
    TRACK_KINDS,
    Filters,
    Rule,
)

RULE_KEYS = ("user", "name", "disabled", "snoozed_until", "track", "filters", "destinations")
FILTER_KEYS = ("applications", "excluded_applications", "severities", "my_actions", "topic")
TRACK_LIST_KEYS = tuple(sorted({f for f in TRACK_FIELDS.values() if f}))


def _hint(word: str, choices: Iterable[str]) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Collects the problems of one rule as ``field: message`` strings."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append(f"{field}: {message}")

    def string(self, value: Any, field: str) -> str | None:
        if not isinstance(value, str):
            self.fail(field, f"must be a string, not {_type_name(value)} {_shown(value)}")
            return None
        if not value.strip():
            self.fail(field, "must not be empty")
            return None
        return value

    def boolean(self, value: Any, field: str) -> bool | None:
        if not isinstance(value, bool):
            self.fail(field, f"must be true or false, not {_type_name(value)} {_shown(value)}")
            return None
        return value

    def names(self, value: Any, field: str, *, allow_empty: bool,
              choices: Collection[str] | None = None, what: str = "value") -> list[str] | None:
        """A list of non-empty strings, optionally each one of ``choices``."""
        if type(value) is list and (value or allow_empty):
            for item in value:
                if type(item) is not str or not item or item.isspace() or (
                        choices is not None and item not in choices):
                    break
            else:
                return value
        return self._bad_names(value, field, allow_empty, choices, what)

    def _bad_names(self, value: Any, field: str, allow_empty: bool,
                   choices: Collection[str] | None, what: str) -> None:
        if not isinstance(value, list):
            self.fail(field, f"must be a list of strings, not {_type_name(value)} "
                             f"{_shown(value)}")
            return None
        if not value and not allow_empty:
            self.fail(field, "must list at least one value")
            return None
        if choices is None:
            valid: list[str] = []
        else:
            valid = list(choices) if isinstance(choices, tuple | list) else sorted(choices)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                shown = "an empty string" if isinstance(item, str) else \
                    f"{_type_name(item)} {_shown(item)}"
                self.fail(f"{field}[{i}]", f"must be a non-empty string, not {shown}")
            elif choices is not None and item not in choices:
                self.fail(f"{field}[{i}]", f"unknown {what} '{item}'{_hint(item, valid)}; "
                                           f"valid: {', '.join(valid)}")
        return None

    def unknown_keys(self, data: dict[str, Any], known: Collection[str], prefix: str) -> None:
        for key in data:
            if key not in known:
                self.fail(f"{prefix}{key}", f"unknown field{_hint(key, known)}; "
                                            f"valid: {', '.join(known)}")


def _where(source: str, index: int | None, data: Any) -> str:
    name = data.get("name") if isinstance(data, dict) else None
    label = f" ({name!r})" if isinstance(name, str) else ""
    if index is None:
        return f"{source}: rule{label}"
    return f"{source}: rule {index}{label}"


def parse_rule(data: Any, *, source: str = "<rule>", index: int | None = None,
               destinations: Collection[str] | None = None,
               shared: dict[Any, Any] | None = None,
               ignore_unknown: bool = False) -> Rule:
    """Check one rule in its JSON form and return it as a :class:`Rule`.

    ``source`` (a file name) and ``index`` (its position in the file) name the
    rule in errors. ``destinations`` are the valid destination names, by
    default every backend's name (:func:`backend_names`, which scans the
    installed entry points, about 10 ms: pass the names when checking rules
    one by one in bulk). ``shared`` is a dict used to share equal
    filters, destination and target lists between the rules of one load, which
    saves memory. ``ignore_unknown`` drops unknown top-level keys (rules read
    back from the database carry an id and timestamps). Raises
    :class:`RuleError` listing every problem of the rule.
    """
    destinations = frozenset(backend_names() if destinations is None else destinations)
    rule, problems = _check(data, destinations, shared, ignore_unknown)
    if problems:
        where = _where(source, index, data)
        raise RuleError("\n".join(f"{where}: {p}" for p in problems))
    assert rule is not None
    return rule


def rule_problems(data: Any, destinations: Collection[str] | None = None
                  ) -> tuple[Rule | None, list[tuple[str, str]]]:
    """Check one rule; the rule (None if invalid) and its problems as ``(field, message)``.

    For callers that report each field on its own (the API); the messages are
    those :func:`parse_rule` raises.
    """
    destinations = frozenset(backend_names() if destinations is None else destinations)
    rule, problems = _check(data, destinations, None, False)
    split = [tuple(p.split(": ", 1)) if ": " in p else ("rule", p) for p in problems]
    return (None if problems else rule), split  # type: ignore[return-value]


def parse_rules(items: Any, *, source: str = "<rules>",
                destinations: Collection[str] | None = None,
                shared: dict[Any, Any] | None = None) -> list[Rule]:
    """Check a list of rules: every rule is valid, or nothing is returned.

    Raises one :class:`RuleError` that lists every problem of every bad rule,
    and rules that repeat an earlier rule's ``(user, name)``.
    """
    if not isinstance(items, list):
        raise RuleError(f"{source}: must hold a JSON list of rules, not "
                        f"{_type_name(items)}")
    destinations = frozenset(backend_names() if destinations is None else destinations)
    if shared is None:
        shared = {}
    rules: list[Rule] = []
    problems: list[str] = []
    bad = 0
    seen: dict[tuple[str, str], int] = {}
    for i, data in enumerate(items):
        rule, rule_problems = _check(data, destinations, shared, False)
        where = _where(source, i, data)
        if rule is not None and rule.key in seen:
            rule_problems.append(f"user, name: same user and name as rule {seen[rule.key]}")
        if rule_problems:
            bad += 1
            problems.extend(f"{where}: {p}" for p in rule_problems)
            continue
        assert rule is not None
        seen[rule.key] = i
        rules.append(rule)
    if problems:
        noun = "rule is" if bad == 1 else "rules are"
        raise RuleError(f"{source}: {bad} of {len(items)} {noun} invalid:\n"
                        + "\n".join(problems))
    return rules


def load_rules_file(path: str, destinations: Collection[str] | None = None) -> list[Rule]:
    """The rules in a JSON file holding a list of rules; all valid, or :class:`RuleError`."""
    name = "<stdin>" if path == "-" else path
    return parse_rules(read_json_file(path), source=name, destinations=destinations)


def backend_names() -> list[str]:
    """The valid destinations: the names of the installed backends."""
    from ..backends.registry import available

    return available()


_RULE_KEYS = frozenset(RULE_KEYS)
_TRACK_KEYS = frozenset(("kind", *TRACK_LIST_KEYS))
_FILTER_KEYS = frozenset(FILTER_KEYS)
_MISSING = object()


def _check(data: Any, destinations: Collection[str], shared: dict[Any, Any] | None,
           ignore_unknown: bool) -> tuple[Rule | None, list[str]]:
    c = _Checker()
    if type(data) is not dict:
        c.fail("rule", f"must be a JSON object, not {_type_name(data)} {_shown(data)}")
        return None, c.problems
    if not ignore_unknown and not _RULE_KEYS.issuperset(data):
        c.unknown_keys(data, RULE_KEYS, "")
    user = data.get("user", _MISSING)
    if user is _MISSING:
        c.fail("user", "missing (required)")
    else:
        user = c.string(user, "user")
    name = data.get("name", _MISSING)
    if name is _MISSING:
        c.fail("name", "missing (required)")
    else:
        name = c.string(name, "name")
    disabled = data.get("disabled", False)
    if disabled is not False and disabled is not True:
        c.boolean(disabled, "disabled")
    snoozed = data.get("snoozed_until")
    if snoozed is not None and (type(snoozed) not in (int, float) or snoozed != snoozed
                                or snoozed in (float("inf"), float("-inf"))):
        c.fail("snoozed_until", f"must be a time in seconds since the epoch, or null, not "
                                f"{_type_name(snoozed)} {_shown(snoozed)}")
    track = data.get("track", _MISSING)
    if track is _MISSING:
        c.fail("track", "missing (required)")
        kind, targets = None, None
    else:
        kind, targets = _check_track(c, track)
    raw = data.get("filters")
    filters = DEFAULT_FILTERS if raw is None or raw == {} else _check_filters(c, raw)
    dests = data.get("destinations", _MISSING)
    if dests is _MISSING:
        c.fail("destinations", "missing (required)")
    else:
        dests = c.names(dests, "destinations", allow_empty=False, choices=destinations,
                        what="destination")
    if c.problems:
        return None, c.problems
    assert isinstance(user, str) and isinstance(name, str) and kind is not None
    assert targets is not None and filters is not None and isinstance(dests, list)
    intern = sys.intern
    targets_t = tuple(map(intern, sorted(set(targets)))) if targets else ()
    dests_t = tuple(map(intern, sorted(set(dests))))
    if shared is not None:
        targets_t = shared.setdefault(targets_t, targets_t)
        dests_t = shared.setdefault(dests_t, dests_t)
        filters = shared.setdefault(filters, filters)
    until = None if snoozed is None else float(snoozed)
    return Rule(intern(user), intern(name), kind, targets_t, filters, dests_t, disabled,
                until), []


def _check_track(c: _Checker, track: Any) -> tuple[str | None, list[str] | None]:
    if type(track) is not dict:
        c.fail("track", f"must be an object with a 'kind', not {_type_name(track)} "
                        f"{_shown(track)}")
        return None, None
    kind = track.get("kind", _MISSING)
    if kind is _MISSING:
        c.fail("track.kind", f"missing (required); one of: {', '.join(TRACK_KINDS)}")
        return None, None
    if not isinstance(kind, str) or kind not in TRACK_FIELDS:
        shown = f"'{kind}'{_hint(kind, TRACK_KINDS)}" if isinstance(kind, str) else \
            f"{_type_name(kind)} {_shown(kind)}"
        c.fail("track.kind", f"unknown kind {shown}; "
                             f"one of: {', '.join(TRACK_KINDS)}")
        return None, None
    field = TRACK_FIELDS[kind]
    if len(track) > 1:
        if not _TRACK_KEYS.issuperset(track):
            c.unknown_keys(track, ("kind", *TRACK_LIST_KEYS), "track.")
        for key in TRACK_LIST_KEYS:
            if key != field and key in track:
                takes = f"it takes '{field}'" if field else "it takes no list"
                c.fail(f"track.{key}", f"not used by kind '{kind}' ({takes})")
    kind = TRACK_KINDS[TRACK_KINDS.index(kind)]  # the constant, so rules share it
    if field is None:
        return kind, []
    targets = track.get(field, _MISSING)
    if targets is _MISSING:
        if kind in OPTIONAL_TARGETS:
            return kind, []
        c.fail(f"track.{field}", f"missing (kind '{kind}' needs a list of {field})")
        return kind, None
    names = c.names(targets, f"track.{field}", allow_empty=False)
    if names is not None and field == "packages":
        return kind, _artifact_keys(c, names, f"track.{field}")
    return kind, names


def _artifact_keys(c: _Checker, names: list[str], field: str) -> list[str] | None:
    """The keys of the followed artifacts (a package's name, ``containers/NAME``, ...)."""
    if not any("/" in name for name in names):  # packages only, as rules were before
        return names
    keys = []
    for i, name in enumerate(names):
        try:
            keys.append(artifacts.parse(name))
        except ValueError as exc:
            c.fail(f"{field}[{i}]", str(exc))
    return keys if len(keys) == len(names) else None


def _check_filters(c: _Checker, raw: Any) -> Filters | None:
    if type(raw) is not dict:
        c.fail("filters", f"must be an object, not {_type_name(raw)} {_shown(raw)}")
        return None
    if not _FILTER_KEYS.issuperset(raw):
        c.unknown_keys(raw, FILTER_KEYS, "filters.")
    before = len(c.problems)
    intern = sys.intern
    apps: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    severities = DEFAULT_SEVERITIES
    value = raw.get("applications")
    if value:
        checked = c.names(value, "filters.applications", allow_empty=True)
        if checked:
            apps = frozenset(intern(a.lower()) for a in checked)
    elif value is not None and value != []:
        c.names(value, "filters.applications", allow_empty=True)
    value = raw.get("excluded_applications")
    if value:
        checked = c.names(value, "filters.excluded_applications", allow_empty=True)
        if checked:
            excluded = frozenset(intern(a.lower()) for a in checked)
    elif value is not None and value != []:
        c.names(value, "filters.excluded_applications", allow_empty=True)
    value = raw.get("severities", _MISSING)
    if value is not _MISSING:
        checked = c.names(value, "filters.severities", allow_empty=False,
                          choices=SEVERITIES, what="severity")
        if checked:
            severities = frozenset(checked)
    my_actions = raw.get("my_actions", False)
    if my_actions is not False and my_actions is not True:
        c.boolean(my_actions, "filters.my_actions")
    topic = raw.get("topic")
    if topic is not None:
        topic = c.string(topic, "filters.topic")
    if len(c.problems) > before:
        return None
    filters = Filters(apps, excluded, severities, my_actions,
                      intern(topic) if topic is not None else None)
    return DEFAULT_FILTERS if filters == DEFAULT_FILTERS else filters
