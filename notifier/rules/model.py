"""What a rule is: a tracking rule, filters and destinations, owned by one user.

Rules are immutable. Build them from JSON with
:func:`notifier.rules.validation.parse_rule`, which fills defaults and checks
every field; turn them back into JSON with :meth:`Rule.to_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

#: message severities, least severe first
SEVERITIES = ("debug", "info", "warning", "error")
DEFAULT_SEVERITIES = frozenset({"info", "warning", "error"})

#: track kind -> the field listing what it tracks (None: the kind takes no list)
TRACK_FIELDS: dict[str, str | None] = {
    "artifacts-owned": "users",
    "artifacts-group-owned": "groups",
    "artifacts-followed": "packages",
    "related-events": None,
    "users-followed": "users",
    "topics": "patterns",
}
TRACK_KINDS = tuple(TRACK_FIELDS)

#: kinds whose list may be left out; artifacts-owned then tracks the rule's own user
OPTIONAL_TARGETS = frozenset({"artifacts-owned"})


@dataclass(frozen=True, slots=True)
class Filters:
    """Conditions a message must meet, all of them, once a rule tracks it.

    ``applications`` and ``excluded_applications`` hold lower-case names.
    """

    applications: frozenset[str] = frozenset()
    excluded_applications: frozenset[str] = frozenset()
    severities: frozenset[str] = DEFAULT_SEVERITIES
    my_actions: bool = False
    topic: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, lists sorted."""
        return {
            "applications": sorted(self.applications),
            "excluded_applications": sorted(self.excluded_applications),
            "severities": [s for s in SEVERITIES if s in self.severities],
            "my_actions": self.my_actions,
            "topic": self.topic,
        }


DEFAULT_FILTERS = Filters()


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One user's rule.

    ``targets`` is the sorted list of the track kind's field (``users``,
    ``groups``, ``packages`` or ``patterns``); ``packages`` holds artifact
    keys (:mod:`notifier.users.artifacts`: ``kernel``,
    ``containers/fedora-toolbox``, ...). It is empty for
    ``related-events``, and for ``artifacts-owned`` when the rule tracks its
    own user's packages. Rules compare by identity: the index keeps each one
    in sets. Compare :meth:`to_dict` results to compare contents.
    """

    user: str
    name: str
    kind: str
    targets: tuple[str, ...]
    filters: Filters
    destinations: tuple[str, ...]
    disabled: bool = False
    #: the rule matches nothing until then (seconds since the epoch); None: not snoozed
    snoozed_until: float | None = None

    def snoozed(self, now: float) -> bool:
        """Whether the rule is snoozed at ``now``."""
        return self.snoozed_until is not None and self.snoozed_until > now

    @property
    def key(self) -> tuple[str, str]:
        """``(user, name)``: what identifies a rule."""
        return (self.user, self.name)

    @property
    def owners(self) -> tuple[str, ...]:
        """For ``artifacts-owned``: whose artifacts the rule tracks."""
        return self.targets or (self.user,)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form that :func:`~notifier.rules.validation.parse_rule` reads back."""
        track: dict[str, Any] = {"kind": self.kind}
        field = TRACK_FIELDS[self.kind]
        if field is not None and self.targets:
            track[field] = list(self.targets)
        out = {
            "user": self.user,
            "name": self.name,
            "disabled": self.disabled,
            "track": track,
            "filters": self.filters.to_dict(),
            "destinations": list(self.destinations),
        }
        if self.snoozed_until is not None:
            out["snoozed_until"] = self.snoozed_until
        return out


class Recipient(NamedTuple):
    """One user a message goes to, with the names of the rules that matched.

    ``destinations`` is the union of those rules' destinations; ``why`` maps
    each rule name to the reason it matched, when an explanation was asked for.
    """

    user: str
    rules: tuple[str, ...]
    destinations: tuple[str, ...]
    why: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``notifier match``."""
        out: dict[str, Any] = {"user": self.user, "rules": list(self.rules),
                               "destinations": list(self.destinations)}
        if self.why is not None:
            out["why"] = self.why
        return out
