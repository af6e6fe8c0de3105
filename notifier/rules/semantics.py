"""What a rule means, written out literally for one rule and one message.

These functions are the definition the indexed matcher must agree with; the
reference matcher applies them to every rule, and the indexed matcher uses
:func:`track_reason` only to explain a match it already found.

A message here is a described record (see ``notifier describe``): a dict with
``topic``, ``app``, ``usernames``, ``agent``, ``severity`` and its artifacts,
``packages``, ``containers``, ``modules`` and ``flatpaks``. The artifact
kinds look at every artifact by its key (:mod:`notifier.users.artifacts`):
``kernel`` for a package, ``containers/fedora-toolbox`` for a container.
Topic globs use :func:`fnmatch.fnmatchcase`: case-sensitive, ``*`` and ``?``
also match dots, ``[...]`` is a character class.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from fnmatch import fnmatchcase
from typing import Any

from ..users.artifacts import label, record_keys
from .model import Rule

#: artifact key -> names of its owners (users, or groups)
Owners = Mapping[str, Collection[str]]


def track_reason(rule: Rule, record: Mapping[str, Any], user_owners: Owners,
                 group_owners: Owners) -> str | None:
    """Why the rule's track matches the message, or ``None`` when it does not."""
    kind = rule.kind
    if kind == "artifacts-owned":
        for artifact in record_keys(record):
            owners = user_owners.get(artifact, ())
            for user in rule.owners:
                if user in owners:
                    return f"{label(artifact)} is owned by {user}"
        return None
    if kind == "artifacts-group-owned":
        for artifact in record_keys(record):
            owners = group_owners.get(artifact, ())
            for group in rule.targets:
                if group in owners:
                    return f"{label(artifact)} is owned by group '{group}'"
        return None
    if kind == "artifacts-followed":
        for artifact in record_keys(record):
            if artifact in rule.targets:
                return f"{label(artifact)} is followed"
        return None
    if kind == "related-events":
        if rule.user in (record.get("usernames") or ()):
            return f"{rule.user} is one of the message's users"
        return None
    if kind == "users-followed":
        agent = record.get("agent")
        if agent is not None and agent in rule.targets:
            return f"agent '{agent}' is followed"
        return None
    if kind == "topics":
        topic = record.get("topic") or ""
        for pattern in rule.targets:
            if fnmatchcase(topic, pattern):
                return f"topic matches '{pattern}'"
        return None
    raise ValueError(f"unknown track kind {kind!r}")  # parse_rule lets none through


def filters_pass(rule: Rule, record: Mapping[str, Any]) -> bool:
    """Whether the message meets every filter of the rule."""
    f = rule.filters
    app = (record.get("app") or "").lower()
    if f.applications and app not in f.applications:
        return False
    if app in f.excluded_applications:
        return False
    if (record.get("severity") or "info") not in f.severities:
        return False
    if not f.my_actions and record.get("agent") == rule.user:
        return False
    return not (f.topic is not None and not fnmatchcase(record.get("topic") or "", f.topic))


def rule_matches(rule: Rule, record: Mapping[str, Any], user_owners: Owners,
                 group_owners: Owners, now: float | None = None) -> str | None:
    """Why the rule matches the message, or ``None``.

    A disabled rule never matches, nor one snoozed at ``now`` (default: the time now).
    """
    if rule.disabled:
        return None
    if rule.snoozed_until is not None and rule.snoozed(time.time() if now is None else now):
        return None
    reason = track_reason(rule, record, user_owners, group_owners)
    if reason is None or not filters_pass(rule, record):
        return None
    return reason
