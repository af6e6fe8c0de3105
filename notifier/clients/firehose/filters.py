"""A channel's include and exclude filters, in the rules' vocabulary.

Topics are fnmatch globs matched as the rules match them, applications are
compared lowercased (FMN's ``applications``), severities are the rules'
names, users match the message's ``usernames`` or its agent, packages any
artifact it concerns, named as the rules name them (``kernel`` or
``rpms/kernel``, ``containers/NAME``, ``modules/NAME``, ``flatpaks/NAME``),
and ``summary`` is a regular expression searched in the summary.

``include`` passes a message when every field it gives matches; ``exclude``
drops it when any field it gives matches. A message is posted when it passes
the include and no exclude.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...config import FirehoseFilter

# The rules' own topic globs (the clients contract allows this import, see pyproject.toml).
from ...rules.topics import compile_glob

#: the described record's artifact lists other than packages, each its own key prefix
_OTHER_KINDS = ("containers", "modules", "flatpaks")


def _artifact(name: str) -> str:
    return name[len("rpms/"):] if name.startswith("rpms/") else name


def artifact_keys(record: Mapping[str, Any]) -> set[str]:
    """Every artifact ``record`` concerns, by key: ``kernel``, ``containers/NAME``, ..."""
    keys = set(record.get("packages") or ())
    for kind in _OTHER_KINDS:
        keys.update(f"{kind}/{name}" for name in record.get(kind) or ())
    return keys


class _Terms:
    """The fields one filter gives, compiled."""

    def __init__(self, spec: FirehoseFilter):
        self.topics = [compile_glob(t) for t in spec.topics]
        self.applications = frozenset(a.lower() for a in spec.applications)
        self.severities = frozenset(spec.severities)
        self.users = frozenset(spec.users)
        self.packages = frozenset(_artifact(p) for p in spec.packages)
        self.summary = re.compile(spec.summary) if spec.summary else None

    def results(self, record: Mapping[str, Any], summary: str) -> list[bool]:
        """Whether each field given matches ``record``."""
        out = []
        if self.topics:
            topic = str(record.get("topic") or "")
            out.append(any(glob(topic) for glob in self.topics))
        if self.applications:
            out.append(str(record.get("app") or "").lower() in self.applications)
        if self.severities:
            out.append(str(record.get("severity") or "info") in self.severities)
        if self.users:
            people = set(record.get("usernames") or ())
            if record.get("agent"):
                people.add(record["agent"])
            out.append(bool(people & self.users))
        if self.packages:
            out.append(bool(artifact_keys(record) & self.packages))
        if self.summary is not None:
            out.append(self.summary.search(summary) is not None)
        return out


class ChannelFilter:
    """Whether a described message belongs in one channel."""

    def __init__(self, include: FirehoseFilter, exclude: FirehoseFilter):
        self.include = _Terms(include)
        self.exclude = _Terms(exclude)

    def passes(self, record: Mapping[str, Any]) -> bool:
        """True when ``record`` passes every include field and matches no exclude field."""
        summary = str(record.get("summary") or "")
        return all(self.include.results(record, summary)) and \
            not any(self.exclude.results(record, summary))
