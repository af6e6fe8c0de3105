"""The questions asked of the history's index (:mod:`.terms`): which messages match.

:class:`TermQuery` is one indexed question: one term kind, any of some values,
with the rule filters. :func:`plan` chooses how to answer it (gathering the
rows of its rarest condition from the term index, or walking the history
newest first), and :func:`newest_matches` and :func:`count_matches` answer it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from .schema import message_facts, message_terms, messages, owners
from .terms import ALL_SEVERITIES

#: candidate term rows up to which a query always gathers the rows of its values and sorts
#: them; past it, it may walk the history newest first instead (see :func:`_select`)
DENSE = 20_000
#: how far term rows are counted to choose a plan
PROBE_CAP = 400_000
#: the matches a plan is chosen for: the preview's bound on its count
COUNT_BOUND = 1000
#: how many messages walked cost as much as one term row gathered (and sorted)
WALK_ADVANTAGE = 2.0


@dataclass(frozen=True)
class TermQuery:
    """Indexed messages with a ``kind`` term among ``values``, that pass the filters.

    ``values`` None means any message (no term needed). The filters are a
    rule's: ``severities`` (None: any), ``applications`` (lower case, empty:
    any), ``excluded_applications``, ``not_agent`` (the rule's user, when
    ``my_actions`` is off) and ``topics`` (None: any; else the exact topics
    allowed). ``since`` is inclusive, ``until`` exclusive.
    """

    kind: str
    values: frozenset[str] | None
    since: float
    until: float | None = None
    severities: frozenset[str] | None = None
    applications: frozenset[str] = frozenset()
    excluded_applications: frozenset[str] = frozenset()
    not_agent: str | None = None
    topics: frozenset[str] | None = None
    #: ``(owner kind, names)``: the values are the artifacts (package terms, by key) these
    #: users or groups own
    owned_by: tuple[str, tuple[str, ...]] | None = None

    @property
    def empty(self) -> bool:
        """Whether nothing can match, without asking the database."""
        return (self.owned_by is None and self.values is not None and not self.values) or \
            (self.topics is not None and not self.topics) or \
            (self.severities is not None and not self.severities)

    def filters(self) -> list[ColumnElement[bool]]:
        """The conditions on ``message_facts``."""
        f = message_facts.c
        out: list[ColumnElement[bool]] = []
        if self.severities is not None:
            out.append(f.severity.in_(sorted(self.severities)))
        if self.applications:
            out.append(f.app.in_(sorted(self.applications)))
        if self.excluded_applications:
            out.append(f.app.not_in(sorted(self.excluded_applications)))
        if self.not_agent is not None:
            out.append(or_(f.agent.is_(None), f.agent != self.not_agent))
        if self.topics is not None:
            out.append(f.topic.in_(sorted(self.topics)))
        return out

    def window(self, column: Any) -> list[ColumnElement[bool]]:
        out = [column >= self.since]
        if self.until is not None:
            out.append(column < self.until)
        return out


def _track_values(query: TermQuery) -> Any:
    """The track's values: a list, or the owners' packages as a subquery."""
    if query.owned_by is not None:
        kind, names = query.owned_by
        return select(owners.c.package).where(owners.c.kind == kind,
                                              owners.c.name.in_(sorted(names)))
    return sorted(query.values or ())


def _drivers(query: TermQuery) -> list[tuple[str, Any]]:
    """Each term condition a message must meet: the track's, and the filters' as terms."""
    out = []
    if query.values is not None or query.owned_by is not None:
        out.append((query.kind, _track_values(query)))
    if query.applications:
        out.append(("app", sorted(query.applications)))
    if query.severities is not None and not ALL_SEVERITIES <= query.severities \
            and "info" not in query.severities:  # nearly every message is "info"
        out.append(("severity", sorted(query.severities)))
    if query.topics is not None:
        out.append(("topic", sorted(query.topics)))
    return out


def _rows_of(query: TermQuery, kind: str, values: Any) -> Any:
    t = message_terms.c
    return and_(t.kind == kind, t.value.in_(values), *query.window(t.timestamp))


def _probe(conn: Connection, query: TermQuery, kind: str, values: Any,
           cap: int = PROBE_CAP) -> int:
    """The term rows of one condition in the window, counted up to ``cap``."""
    probe = select(message_terms.c.message_id).where(
        _rows_of(query, kind, values)).limit(cap)
    return conn.scalar(select(func.count()).select_from(probe.subquery())) or 0


def _window_size(conn: Connection, query: TermQuery) -> int:
    """About how many messages the window holds: the span of ids between its oldest and its
    newest message (two index look-ups; history imported out of order makes it rougher)."""
    m = messages.c
    ends = [conn.scalar(select(m.id).where(*query.window(m.timestamp))
                        .order_by(order).limit(1))
            for order in (m.timestamp.asc(), m.timestamp.desc())]
    if ends[0] is None or ends[1] is None:
        return 0
    return abs(ends[1] - ends[0]) + 1


#: term kinds a message has exactly one of, also in ``message_facts``
_SINGLE = {"topic": "topic", "agent": "agent", "app": "app", "severity": "severity"}


def _track_test(query: TermQuery, on_id: Any) -> Any:
    """The track's condition on one message (``on_id``: its id column), or None."""
    if query.values is None and query.owned_by is None:
        return None
    u = message_terms.alias("u")
    if query.owned_by is not None:
        # A join, not IN (subquery): SQLite would run the subquery again for every message.
        kind, names = query.owned_by
        o = owners.alias("o")
        return exists().where(u.c.message_id == on_id, u.c.kind == "package",
                              o.c.package == u.c.value, o.c.kind == kind,
                              o.c.name.in_(sorted(names)))
    values = _track_values(query)
    if query.kind in _SINGLE:
        return getattr(message_facts.c, _SINGLE[query.kind]).in_(values)
    return exists().where(u.c.message_id == on_id, u.c.kind == query.kind,
                          u.c.value.in_(values))


@dataclass(frozen=True)
class Plan:
    """How :func:`newest_matches` finds a query's messages (made by :func:`plan`).

    ``statement`` selects ``id, timestamp`` of every match. For a walk of the
    history, ``gather`` is the term index's statement too, and ``walk_budget``
    how many of the newest messages the walk visits before gathering takes over:
    the walk is chosen on the conditions taken as independent, and conditions
    that exclude each other (a topic of one application, another application's
    filter) would have it visit the whole window for nothing.
    """

    statement: Any
    gather: Any = None
    walk_budget: int = 0


def _gather(query: TermQuery, best: tuple[str, Any]) -> Any:
    """The rows of the condition ``best`` from the term index, the others tested on each."""
    t, f = message_terms.c, message_facts.c
    conditions = [_rows_of(query, *best), *query.filters()]
    is_track = best[0] == query.kind and (query.values is not None
                                          or query.owned_by is not None)
    if not is_track:
        track = _track_test(query, t.message_id)
        if track is not None:
            conditions.append(track)
    stmt = (select(t.message_id.label("id"), t.timestamp.label("timestamp"))
            .join(message_facts, f.message_id == t.message_id).where(*conditions))
    # Several values of a kind a message has several of: a message may come twice.
    if best[0] not in _SINGLE and not (isinstance(best[1], list) and len(best[1]) == 1):
        stmt = stmt.distinct()
    return stmt


def _walk(query: TermQuery) -> Any:
    """The history newest first, each message tested."""
    m, f = messages.c, message_facts.c
    conditions = [*query.window(m.timestamp), *query.filters()]
    track = _track_test(query, m.id)
    if track is not None:
        conditions.append(track)
    return (select(m.id.label("id"), m.timestamp.label("timestamp"))
            .join(message_facts, f.message_id == m.id).where(*conditions))


def _select(conn: Connection, query: TermQuery, walk: bool = False) -> Plan:
    """The cheapest plan for ``query``.

    The term condition with the fewest rows in the window (the track's, or a
    filter's: applications, severities, topics) drives: its rows are gathered
    from the term index and the others tested on each. When every condition
    has :data:`DENSE` rows or more, or with ``walk``, the history is walked
    newest first instead, testing each message (quick when matches are many).
    """
    drivers = _drivers(query)
    if walk or not drivers:
        return Plan(_walk(query))
    window = max(_window_size(conn, query), 1)
    # A single condition with this many rows is walked anyway (see below): counting
    # further tells nothing. Several conditions may need more: counted again then.
    enough = max(DENSE, math.isqrt(int(WALK_ADVANTAGE * COUNT_BOUND * window)) + 1)
    for cap in (min(enough, PROBE_CAP), PROBE_CAP):
        probed = []
        limit = cap
        for kind, values in drivers:
            # No need to count past the fewest so far: that one drives anyway.
            n = _probe(conn, query, kind, values, limit)
            probed.append((n, kind, values))
            limit = min(limit, max(n, DENSE))
        fewest, kind, values = min(probed, key=lambda p: p[0])
        if fewest < DENSE:
            return Plan(_gather(query, (kind, values)))
        # Walking finds ``bound`` matches after about bound / selectivity messages, the
        # conditions taken as independent; gathering reads the fewest rows.
        selectivity = max(math.prod(min(n, window) / window for n, _, _ in probed), 1e-9)
        visits = WALK_ADVANTAGE * COUNT_BOUND / selectivity
        if fewest > visits:
            return Plan(_walk(query), gather=_gather(query, (kind, values)),
                        walk_budget=max(DENSE, int(4 * visits)))
        # Counts cut short make the selectivity look lower than it is: gathering chosen
        # on them is checked with full counts.
        if fewest < cap or cap == PROBE_CAP:
            break
    return Plan(_gather(query, (kind, values)))


def plan(conn: Connection, query: TermQuery, walk: bool = False) -> Plan | None:
    """How to find the query's messages (see :func:`_select`), to ask it twice; None when
    nothing can match."""
    return None if query.empty else _select(conn, query, walk)


def count_matches(conn: Connection, query: TermQuery, bound: int,
                  planned: Plan | None = None) -> int:
    """How many messages match, counting no further than ``bound``."""
    if query.empty:
        return 0
    chosen = planned if planned is not None else _select(conn, query)
    if chosen.gather is not None:
        return len(newest_matches(conn, query, bound, None, chosen))
    inner = chosen.statement.limit(bound).subquery()
    return conn.scalar(select(func.count()).select_from(inner)) or 0


def newest_matches(conn: Connection, query: TermQuery, limit: int,
                   before: tuple[float, int] | None = None,
                   planned: Plan | None = None) -> list[tuple[int, float]]:
    """``(messages.id, timestamp)`` of up to ``limit`` matches, newest first.

    ``before`` continues after a ``(timestamp, id)`` already seen; ``planned``
    is what :func:`plan` made for this query.
    """
    if query.empty:
        return []
    chosen = planned if planned is not None else _select(conn, query)
    if chosen.gather is None:
        return _newest(conn, chosen.statement, limit, before)
    if before is None:
        # The walk over the newest ``walk_budget`` messages: enough matches there are
        # the newest of all; too few, and the term index answers instead.
        m = messages.c
        edge = conn.scalar(select(m.timestamp).where(*query.window(m.timestamp))
                           .order_by(m.timestamp.desc()).offset(chosen.walk_budget - 1)
                           .limit(1))
        if edge is None:  # the window holds fewer messages: the walk sees them all
            return _newest(conn, chosen.statement, limit, None)
        found = _newest(conn, chosen.statement.where(m.timestamp >= edge), limit, None)
        if len(found) >= limit:
            return found
    return _newest(conn, chosen.gather, limit, before)


def _newest(conn: Connection, statement: Any, limit: int,
            before: tuple[float, int] | None) -> list[tuple[int, float]]:
    inner = statement.subquery()
    stmt = select(inner.c.id, inner.c.timestamp)
    if before is not None:
        stmt = stmt.where(or_(inner.c.timestamp < before[0],
                              and_(inner.c.timestamp == before[0], inner.c.id < before[1])))
    stmt = stmt.order_by(inner.c.timestamp.desc(), inner.c.id.desc()).limit(limit)
    return [(row.id, row.timestamp) for row in conn.execute(stmt)]
