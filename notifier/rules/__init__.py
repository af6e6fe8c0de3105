"""Per-user rules and the matcher that finds who gets a message.

A rule belongs to one user and has three parts:

* a **track** kind, saying which messages concern it: ``artifacts-owned``
  (an artifact of the message, a package, container, module or flatpak, is
  owned by one of ``users``, default the rule's user),
  ``artifacts-group-owned`` (owned by one of ``groups``),
  ``artifacts-followed`` (one of ``packages``: a package's name, or
  ``containers/NAME``, ``modules/NAME``, ``flatpaks/NAME``; see
  :mod:`notifier.users.artifacts`), ``related-events`` (the rule's
  user is among the message's usernames), ``users-followed`` (the message's
  agent is one of ``users``) or ``topics`` (one of the ``patterns`` matches
  the topic);
* **filters**, all of which must hold: ``applications``,
  ``excluded_applications``, ``severities``, ``my_actions`` and ``topic``;
* **destinations**: backend names such as email, irc, rss and desktop.

A disabled rule matches nothing, nor a snoozed one until its time. Topic
globs follow :func:`fnmatch.fnmatchcase`: case-sensitive, and ``*`` also
matches dots.

:class:`Matcher` answers through an index and can be changed in place;
:class:`ReferenceMatcher` checks every rule and defines the expected answers.
"""

from .matcher import Matcher
from .model import DEFAULT_FILTERS, SEVERITIES, TRACK_KINDS, Filters, Recipient, Rule
from .reference import ReferenceMatcher
from .validation import load_rules_file, parse_rule, parse_rules

__all__ = [
    "DEFAULT_FILTERS",
    "SEVERITIES",
    "TRACK_KINDS",
    "Filters",
    "Matcher",
    "Recipient",
    "ReferenceMatcher",
    "Rule",
    "load_rules_file",
    "parse_rule",
    "parse_rules",
]
