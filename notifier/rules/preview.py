"""The rule preview: the stored messages a rule would have matched, found through the index.

Describing and matching every stored message takes seconds per hundred
thousand; the preview asks the history's index (:mod:`notifier.storage.terms`)
instead. A rule's track kind becomes one term look-up:

=========================  ==============================================
``artifacts-owned``        artifacts owned by the tracked users
``artifacts-group-owned``  artifacts owned by the tracked groups
``artifacts-followed``     the followed artifacts
``related-events``         the rule's user among the message's users
``users-followed``         the message's agent among the followed users
``topics``                 the stored topics that one of the globs matches
=========================  ==============================================

(artifacts of every kind, packages, containers, modules and flatpaks, by
their keys: see :mod:`notifier.users.artifacts`), and its filters become
conditions on each message's facts (severity, application, agent, topic).
The messages it finds, a page at a time, are then described again and
matched by :class:`~.matcher.Matcher` with the rule alone, so what the
preview returns is what the matcher says, and :func:`scan` (the same
question asked of every stored message) gives the same answer: the tests
hold them to it. A disabled rule is previewed as if it were enabled.

Messages stored before the index existed (``notifier history reindex`` has
not run since the upgrade) are described and matched one by one, as
:func:`scan` does; :attr:`Preview.unindexed` says how many.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

from ..config import Config
from ..errors import InputError
from ..storage import Store
from ..storage import termquery as questions
from ..storage import terms as index
from ..users.artifacts import record_keys
from .matcher import Matcher
from .model import Rule

#: how far the total is counted by default
COUNT_BOUND = 1000


class Describes(Protocol):
    def describe(self, message: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Match:
    """One stored message the rule matches, described."""

    msg_id: str
    timestamp: float
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``msg_id``, ``topic``, ``app``, ``summary``, ``link``, ``timestamp``."""
        r = self.record
        return {"msg_id": self.msg_id, "topic": r.get("topic"), "app": r.get("app"),
                "summary": r.get("summary"), "link": r.get("link"),
                "timestamp": self.timestamp}


@dataclass(frozen=True)
class Preview:
    """The newest matches, and how many there are in all.

    ``total`` is exact when ``total_exact``; else there are at least that many.
    ``unindexed`` counts the messages of the window that had no index rows and
    were described one by one.
    """

    matches: list[Match]
    total: int
    total_exact: bool
    unindexed: int = 0


class RulePreview:
    """Previews rules against ``store``'s history, describing with ``describer``."""

    def __init__(self, store: Store, describer: Describes):
        self.store = store
        self.describer = describer

    @classmethod
    def for_config(cls, store: Store, config: Config) -> RulePreview:
        """Describing as ``config`` says, as the service does."""
        from ..meta import Describer

        return cls(store, Describer(config))

    # -- the indexed question ---------------------------------------------------

    def _ownership(self, conn: Any, rule: Rule, packages: Iterable[str] | None = None
                   ) -> list[tuple[str, str, str]]:
        """The owners the rule looks at (of ``packages`` only, when given)."""
        owned_by = _owned_by(rule)
        if owned_by is None:
            return []
        return index.ownership_of(conn, *owned_by, packages=packages)

    def _query(self, conn: Any, rule: Rule, since: float, until: float | None
               ) -> questions.TermQuery:
        kind, values = _track_terms(rule)
        topics: frozenset[str] | None = None
        patterns = list(rule.targets) if rule.kind == "topics" else []
        if patterns or rule.filters.topic is not None:
            known = index.known_values(conn, "topic", since=since)
            if patterns:
                values = frozenset(t for t in known if any(fnmatchcase(t, p) for p in patterns))
            if rule.filters.topic is not None:
                topics = frozenset(t for t in known if fnmatchcase(t, rule.filters.topic))
        f = rule.filters
        return questions.TermQuery(
            kind=kind, values=values, since=since, until=until, severities=f.severities,
            applications=f.applications, excluded_applications=f.excluded_applications,
            not_agent=None if f.my_actions else rule.user, topics=topics,
            owned_by=_owned_by(rule))

    # -- answers ----------------------------------------------------------------------

    def preview(self, rule: Rule, since: float, *, until: float | None = None,
                limit: int = 50, bound: int = COUNT_BOUND) -> Preview:
        """The ``limit`` newest matches from ``since`` on, and their number up to ``bound``."""
        found: list[Match] = []
        counter = _Counter()
        for match in self.matches(rule, since, until=until, page=limit + 5, counter=counter):
            found.append(match)
            if len(found) >= limit:
                break
        total = counter.counted if bound == COUNT_BOUND else counter.total(bound + 1)
        total += counter.unindexed_matches - counter.dropped
        return Preview(found, min(total, bound), total <= bound, counter.unindexed)

    def matches(self, rule: Rule, since: float, *, until: float | None = None,
                page: int = 200, counter: _Counter | None = None) -> Iterator[Match]:
        """Every match from ``since`` on, newest first."""
        counter = counter if counter is not None else _Counter()
        rule = dataclasses.replace(rule, disabled=False)
        with self.store._transaction("prepare the rule preview", write=False) as conn:
            query = self._query(conn, rule, since, until)
            planned = questions.plan(conn, query)
            upto = index.unindexed_upto(conn)
            # The newest COUNT_BOUND + 1 at once: their number is the count, and the
            # first pages come from them (one query, where counting took one more).
            head = questions.newest_matches(conn, query, COUNT_BOUND + 1, None, planned)
            counter.counted = len(head)

        def total(bound: int) -> int:
            with self.store._transaction("count the rule preview", write=False) as conn:
                return questions.count_matches(conn, query, bound)

        counter.total = total  # type: ignore[method-assign]
        old = self._unindexed(rule, since, until, upto, counter)
        pending = next(old, None)

        def id_pages() -> Iterator[list[tuple[int, float]]]:
            for start in range(0, len(head), page):
                yield head[start:start + page]
            if len(head) <= COUNT_BOUND:
                return
            before = (head[-1][1], head[-1][0])
            while True:
                with self.store._transaction("read the rule preview", write=False) as conn:
                    ids = questions.newest_matches(conn, query, page, before, planned)
                if ids:
                    yield ids
                if len(ids) < page:
                    return
                before = (ids[-1][1], ids[-1][0])

        for ids in id_pages():
            with self.store._transaction("read the rule preview", write=False) as conn:
                rows = index.envelopes(conn, [i for i, _ in ids])
            described = {i: self._describe(row.envelope) for i, row in rows.items()}
            if _owned_by(rule) is not None:
                with self.store._transaction("read package owners", write=False) as conn:
                    packages = {p for r in described.values() if r for p in record_keys(r)}
                    matcher = Matcher([rule], self._ownership(conn, rule, packages))
            else:
                matcher = Matcher([rule])
            for message_id, stamp in ids:
                while pending is not None and (pending[0], pending[1]) > (stamp, message_id):
                    yield pending[2]
                    pending = next(old, None)
                row, record = rows.get(message_id), described.get(message_id)
                match = None if row is None or record is None or not matcher.match(record) \
                    else Match(row.msg_id, row.timestamp, record)
                if match is None:
                    counter.dropped += 1  # the index disagrees: described otherwise now
                    continue
                yield match
        while pending is not None:
            yield pending[2]
            pending = next(old, None)

    def _describe(self, envelope: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.describer.describe(envelope)
        except InputError:
            return None

    def _check(self, matcher: Matcher, row: Any) -> Match | None:
        record = self._describe(row.envelope)
        if record is None or not matcher.match(record):
            return None
        return Match(row.msg_id, row.timestamp, record)

    def _unindexed(self, rule: Rule, since: float, until: float | None,
                   upto: int | None, counter: _Counter
                   ) -> Iterator[tuple[float, int, Match]]:
        """Matches among messages the index lacks, newest first."""
        if upto is None:
            return
        with self.store._transaction("read package owners", write=False) as conn:
            matcher = Matcher([rule], self._ownership(conn, rule))
        found: list[tuple[float, int, Match]] = []
        after = 0
        while True:
            with self.store._transaction("read unindexed messages", write=False) as conn:
                rows = index.unindexed(conn, after, 1000, upto)
            for row in rows:
                if row.timestamp < since or (until is not None and row.timestamp >= until):
                    continue
                counter.unindexed += 1
                match = self._check(matcher, _Row(row))
                if match is not None:
                    found.append((row.timestamp, row.id, match))
            if len(rows) < 1000:
                break
            after = rows[-1].id
        counter.unindexed_matches = len(found)
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        yield from found


@dataclass
class _Counter:
    unindexed: int = 0
    unindexed_matches: int = 0
    dropped: int = 0
    #: the indexed matches, counted up to COUNT_BOUND + 1
    counted: int = 0

    def total(self, bound: int) -> int:
        """The indexed matches, counted up to ``bound`` (set by :meth:`RulePreview.matches`)."""
        return 0


class _Row:
    """A row of :func:`notifier.storage.terms.unindexed` with a ``msg_id``."""

    def __init__(self, row: Any):
        from ..bus.envelope import message_id

        self.envelope = row.envelope
        self.timestamp = row.timestamp
        self.msg_id = message_id(row.envelope)


def _owned_by(rule: Rule) -> tuple[str, tuple[str, ...]] | None:
    """For the ownership kinds: ``("user", owners)`` or ``("group", groups)``."""
    if rule.kind == "artifacts-owned":
        return "user", rule.owners
    if rule.kind == "artifacts-group-owned":
        return "group", rule.targets
    return None


def _track_terms(rule: Rule) -> tuple[str, frozenset[str] | None]:
    """The term kind and values the rule's track kind looks up (owned packages: in SQL)."""
    kind = rule.kind
    if kind in ("artifacts-owned", "artifacts-group-owned"):
        return "package", None
    if kind == "artifacts-followed":
        return "package", frozenset(rule.targets)
    if kind == "related-events":
        return "user", frozenset((rule.user,))
    if kind == "users-followed":
        return "agent", frozenset(rule.targets)
    if kind == "topics":
        return "topic", frozenset()  # filled from the stored topics
    raise ValueError(f"unknown track kind {kind!r}")  # parse_rule lets none through


def scan(store: Store, describer: Describes, rule: Rule, since: float,
         until: float | None = None) -> Iterator[tuple[Any, dict[str, Any] | None]]:
    """Describe and match every stored message from ``since`` on, oldest first.

    Yields ``(stored row, described record)`` for each match, and
    ``(stored row, None)`` for each message that could not be described. The
    slow way the preview avoids: its reference, and the benchmark's baseline.
    """
    rule = dataclasses.replace(rule, disabled=False)
    with store._transaction("read package owners", write=False) as conn:
        matcher = Matcher([rule], RulePreview(store, describer)._ownership(conn, rule))
    glob = rule.filters.topic
    if glob is None and rule.kind == "topics" and len(rule.targets) == 1:
        glob = rule.targets[0]
    for row in store.message_rows(since=since, until=until, topic_glob=glob):
        try:
            record = describer.describe(row.envelope)
        except InputError:
            yield row, None
            continue
        if matcher.match(record):
            yield row, record
