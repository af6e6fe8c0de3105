"""The history's index: what each stored message is about, for the rule preview.

A rule's preview asks which stored messages the rule would have matched.
Describing every stored message again for each preview costs seconds per
hundred thousand messages, so each message is described once, when it is
stored, and what the rules look at is written beside it:

- ``message_facts``, one row per message: the topic, the application (lower
  case), the severity and the agent, which the rule filters test;
- ``message_terms``, ``(kind, value, timestamp, message_id)`` rows: the
  message's users, agent, packages, groups and topic, which the track kinds
  look up, newest first;
- ``history_terms``: every ``(kind, value)`` the history holds, with the
  time of its newest message; the rule editor's look-ups read it, and a topic
  glob is matched against its topics to become a list of topics.

:func:`index_rows` turns described records (see ``notifier describe``) into
those rows; :func:`write_index` writes them in the caller's transaction.
:class:`TermQuery` is one indexed question (one term kind, any of some
values, with the rule filters) and :func:`count_matches` and
:func:`newest_matches` answer it. A value longer than :data:`MAX_VALUE`
characters is not indexed (no package, user or topic is that long).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from .schema import history_terms, message_facts, message_terms, messages, owners, settings

#: term kinds: a message's usernames, its agent, packages, groups, topic, application
#: (lower case) and severity
TERM_KINDS = ("user", "agent", "package", "group", "topic", "app", "severity")
#: every severity a message can have, as the filters know them
ALL_SEVERITIES = frozenset({"debug", "info", "warning", "error"})
#: values longer than this are not indexed
MAX_VALUE = 512
#: candidate term rows up to which a query always gathers the rows of its values and sorts
#: them; past it, it may walk the history newest first instead (see :func:`_select`)
DENSE = 20_000
#: how far term rows are counted to choose a plan
PROBE_CAP = 400_000
#: the matches a plan is chosen for: the preview's bound on its count
COUNT_BOUND = 1000
#: how many messages walked cost as much as one term row gathered (and sorted)
WALK_ADVANTAGE = 2.0
_CHUNK = 2000
#: how far behind a term's ``last_seen`` may be (see :class:`RecentTerms`)
VOCABULARY_SLACK = 3600.0
#: the settings key of the newest message stored before the index existed (migration 0008)
UNINDEXED_UPTO = "history_unindexed_upto"


@dataclass(frozen=True)
class IndexRows:
    """What :func:`write_index` writes for some messages, as tuples in column order."""

    #: (message_id, timestamp, topic, app, severity, agent)
    facts: list[tuple[Any, ...]]
    #: (kind, value, timestamp, message_id)
    terms: list[tuple[Any, ...]]
    #: (kind, value) -> newest timestamp
    vocabulary: dict[tuple[str, str], float]


class RecentTerms:
    """The vocabulary a process wrote lately: a batch upserts only terms not written within
    :data:`VOCABULARY_SLACK` seconds of its messages, so ``last_seen`` may lag by that much.

    Only what was committed is remembered (:meth:`remember` after the transaction).
    """

    def __init__(self, size: int = 200_000):
        self._written: dict[tuple[str, str], float] = {}
        self._size = size

    def wanted(self, vocabulary: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
        written = self._written
        return {key: t for key, t in vocabulary.items()
                if written.get(key, -math.inf) < t - VOCABULARY_SLACK}

    def remember(self, vocabulary: dict[tuple[str, str], float]) -> None:
        if len(self._written) + len(vocabulary) > self._size:
            self._written.clear()
        for key, t in vocabulary.items():
            if self._written.get(key, -math.inf) < t:
                self._written[key] = t


def _fits(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_VALUE


def index_rows(described: Iterable[tuple[int, float, Mapping[str, Any]]]) -> IndexRows:
    """The index rows of ``(messages.id, timestamp, described record)`` triples.

    The record is what :class:`notifier.meta.Describer` returns; the filters
    see it as the matcher does: the application lower-cased, a missing
    severity as ``info``.
    """
    facts: list[tuple[Any, ...]] = []
    terms: list[tuple[Any, ...]] = []
    add = terms.append
    vocabulary: dict[tuple[str, str], float] = {}
    for message_id, stamp, record in described:
        topic = str(record.get("topic") or "")
        app = str(record.get("app") or "").lower()
        agent = record.get("agent")
        if not isinstance(agent, str):
            agent = None
        severity = str(record.get("severity") or "info")
        facts.append((message_id, stamp, topic, app, severity, agent))
        seen = {("topic", topic), ("severity", severity)}
        if app:
            seen.add(("app", app))
        if agent is not None:
            seen.add(("agent", agent))
        for kind, field in (("user", "usernames"), ("package", "packages"),
                            ("group", "groups")):
            for value in record.get(field) or ():
                seen.add((kind, value))
        for key in seen:
            if not _fits(key[1]):
                continue
            add((key[0], key[1], stamp, message_id))
            if vocabulary.get(key, -math.inf) < stamp:
                vocabulary[key] = stamp
    return IndexRows(facts, terms, vocabulary)


_INSERTS = {
    "facts": "INSERT INTO message_facts (message_id, timestamp, topic, app, severity, agent) "
             "VALUES ({0}, {0}, {0}, {0}, {0}, {0}) ON CONFLICT DO NOTHING",
    "terms": "INSERT INTO message_terms (kind, value, timestamp, message_id) "
             "VALUES ({0}, {0}, {0}, {0}) ON CONFLICT DO NOTHING",
    "vocabulary": "INSERT INTO history_terms (kind, value, last_seen) VALUES ({0}, {0}, {0}) "
                  "ON CONFLICT (kind, value) DO UPDATE SET last_seen = excluded.last_seen "
                  "WHERE excluded.last_seen > history_terms.last_seen",
}


def write_index(conn: Connection, dialect: str, rows: IndexRows,
                recent: RecentTerms | None = None) -> dict[tuple[str, str], float]:
    """Write ``rows`` in ``conn``'s transaction; rows already there are left as they are.

    Returns the vocabulary written, for ``recent.remember`` once committed.
    The rows go to the driver as they are (tuples to ``executemany``): per
    row, building parameters costs more than the database's own work.
    """
    mark = "%s" if dialect == "postgresql" else "?"
    if rows.facts:
        conn.exec_driver_sql(_INSERTS["facts"].format(mark), rows.facts)
    if rows.terms:
        conn.exec_driver_sql(_INSERTS["terms"].format(mark), rows.terms)
    wanted = rows.vocabulary if recent is None else recent.wanted(rows.vocabulary)
    if wanted:
        # Sorted, so that two writers take the rows' locks in the same order.
        conn.exec_driver_sql(_INSERTS["vocabulary"].format(mark),
                             [(k, v, t) for (k, v), t in sorted(wanted.items())])
    return wanted


def prune_index(conn: Connection, cutoff: float) -> None:
    """Forget the index rows of messages older than ``cutoff`` (before they are deleted)."""
    old = select(messages.c.id).where(messages.c.timestamp < cutoff).scalar_subquery()
    conn.execute(message_terms.delete().where(message_terms.c.message_id.in_(old)))
    conn.execute(message_facts.delete().where(message_facts.c.message_id.in_(old)))
    conn.execute(history_terms.delete().where(
        history_terms.c.last_seen < cutoff - VOCABULARY_SLACK))


def forget(conn: Connection, message_ids: list[int]) -> None:
    """Remove the index rows of these messages (to index them again)."""
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start:start + _CHUNK]
        conn.execute(message_terms.delete().where(message_terms.c.message_id.in_(chunk)))
        conn.execute(message_facts.delete().where(message_facts.c.message_id.in_(chunk)))


# -- questions ------------------------------------------------------------------


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
    #: ``(owner kind, names)``: the values are the packages these users or groups own
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


def envelopes(conn: Connection, ids: list[int]) -> dict[int, Any]:
    """The stored rows of these message ids: id -> (msg_id, topic, timestamp, envelope)."""
    out: dict[int, Any] = {}
    m = messages.c
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for row in conn.execute(select(m.id, m.msg_id, m.topic, m.timestamp, m.envelope)
                                .where(m.id.in_(chunk))):
            out[row.id] = row
    return out


def known_values(conn: Connection, kind: str, prefix: str = "", limit: int | None = None,
                 since: float | None = None) -> list[str]:
    """The ``kind`` values of the history starting with ``prefix``, sorted."""
    h = history_terms.c
    stmt = select(h.value).where(h.kind == kind)
    if prefix:
        stmt = stmt.where(h.value >= prefix, h.value < _after(prefix))
    if since is not None:
        stmt = stmt.where(h.last_seen >= since - VOCABULARY_SLACK)
    stmt = stmt.order_by(h.value)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.scalars(stmt))


def _after(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix``."""
    return prefix + "\U0010ffff"


def unindexed(conn: Connection, after: int, limit: int,
              upto: int | None = None) -> list[Any]:
    """Stored messages without index rows, by id after ``after``: id, timestamp, envelope."""
    m = messages.c
    stmt = (select(m.id, m.timestamp, m.envelope)
            .where(m.id > after, ~exists().where(message_facts.c.message_id == m.id)))
    if upto is not None:
        stmt = stmt.where(m.id <= upto)
    return conn.execute(stmt.order_by(m.id).limit(limit)).all()


def unindexed_upto(conn: Connection) -> int | None:
    """The id up to which messages stored before the index may lack index rows, or None."""
    value = conn.scalar(select(settings.c.value).where(settings.c.key == UNINDEXED_UPTO))
    return None if value is None else int(value)


def set_unindexed_upto(conn: Connection, upto: int | None) -> None:
    """Record (or, with None, clear) :func:`unindexed_upto`."""
    conn.execute(settings.delete().where(settings.c.key == UNINDEXED_UPTO))
    if upto is not None:
        conn.execute(settings.insert().values(key=UNINDEXED_UPTO, value=str(upto)))


def count_unindexed(conn: Connection) -> int:
    """How many stored messages have no index rows."""
    m = messages.c
    return conn.scalar(select(func.count()).select_from(messages).where(
        ~exists().where(message_facts.c.message_id == m.id))) or 0


def ownership_of(conn: Connection, kind: str, names: Iterable[str],
                 packages: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """``(package, kind, name)`` for each package owned by one of ``names``.

    With ``packages``, only for those packages.
    """
    wanted = sorted(set(names))
    o = owners.c
    where = [o.kind == kind, o.name.in_(wanted)]
    if packages is not None:
        where.append(o.package.in_(sorted(set(packages))))
    if not wanted:
        return []
    return [(r.package, r.kind, r.name)
            for r in conn.execute(select(o.package, o.kind, o.name).where(*where))]
