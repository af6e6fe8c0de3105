"""The history's index: what each stored message is about, for the rule preview.

A rule's preview asks which stored messages the rule would have matched.
Describing every stored message again for each preview costs seconds per
hundred thousand messages, so each message is described once, when it is
stored, and what the rules look at is written beside it:

- ``message_facts``, one row per message: the topic, the application (lower
  case), the severity and the agent, which the rule filters test;
- ``message_terms``, ``(kind, value, timestamp, message_id)`` rows: the
  message's users, agent, artifacts, groups and topic, which the track kinds
  look up, newest first. Artifacts of every kind are ``package`` terms, by
  their key (:mod:`notifier.users.artifacts`): ``kernel`` for a package, as
  before there were other kinds, ``containers/fedora-toolbox`` for a
  container, and so on, the keys package owners are stored by;
- ``history_terms``: every ``(kind, value)`` the history holds, with the
  time of its newest message; the rule editor's look-ups read it, and a topic
  glob is matched against its topics to become a list of topics.

:func:`index_rows` turns described records (see ``notifier describe``) into
those rows; :func:`write_index` writes them in the caller's transaction.
:mod:`.termquery` asks the index its questions. A value longer than :data:`MAX_VALUE`
characters is not indexed (no package, user or topic is that long).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.engine import Connection

from ..users.artifacts import record_keys
from .engine import pg_columns
from .schema import history_terms, message_facts, message_terms, messages, owners, settings

#: term kinds: a message's usernames, its agent, artifacts (packages, containers, modules,
#: flatpaks, by key), groups, topic, application (lower case) and severity
TERM_KINDS = ("user", "agent", "package", "group", "topic", "app", "severity")
#: every severity a message can have, as the filters know them
ALL_SEVERITIES = frozenset({"debug", "info", "warning", "error"})
#: values longer than this are not indexed
MAX_VALUE = 512
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
        for kind, field in (("user", "usernames"), ("group", "groups")):
            for value in record.get(field) or ():
                seen.add((kind, value))
        for value in record_keys(record):
            seen.add(("package", value))
        for key in seen:
            if not _fits(key[1]):
                continue
            add((key[0], key[1], stamp, message_id))
            if vocabulary.get(key, -math.inf) < stamp:
                vocabulary[key] = stamp
    return IndexRows(facts, terms, vocabulary)


_IGNORE = " ON CONFLICT DO NOTHING"
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
                recent: RecentTerms | None = None, *, vocabulary: bool = True,
                fresh: bool = False) -> dict[tuple[str, str], float]:
    """Write ``rows`` in ``conn``'s transaction; rows already there are left as they are.

    Returns the vocabulary written, for ``recent.remember`` once committed.
    The rows go to the driver as they are (tuples to ``executemany``): per
    row, building parameters costs more than the database's own work.

    With ``vocabulary`` False, ``history_terms`` is left to the caller
    (:func:`write_vocabulary`), which returns what it wrote. ``fresh`` says
    that the messages were inserted in this transaction, so none of their
    rows can be there yet: they are inserted without looking for them (a
    conflict check costs PostgreSQL about a third more per row).
    """
    pg = dialect == "postgresql"
    for name, kinds in (("facts", "iftttt"), ("terms", "ttfi")):
        values = getattr(rows, name)
        if not values:
            continue
        sql = (_PG_INSERTS if pg else _INSERTS)[name]
        if fresh:
            sql = sql.removesuffix(_IGNORE)
        if pg:
            conn.exec_driver_sql(sql, pg_columns(values, kinds))
        else:
            conn.exec_driver_sql(sql.format("?"), values)
    return write_vocabulary(conn, dialect, rows.vocabulary, recent) if vocabulary else {}


def write_vocabulary(conn: Connection, dialect: str, vocabulary: dict[tuple[str, str], float],
                     recent: RecentTerms | None = None) -> dict[tuple[str, str], float]:
    """Upsert ``history_terms`` in ``conn``'s transaction: those ``recent`` did not write lately.

    Another writer upserting the same terms waits for this transaction to
    end, so the caller does this last. Returns what it wrote, for
    ``recent.remember`` once committed.
    """
    wanted = vocabulary if recent is None else recent.wanted(vocabulary)
    if not wanted:
        return wanted
    # Sorted, so that two writers take the rows' locks in the same order.
    ordered = [(k, v, t) for (k, v), t in sorted(wanted.items())]
    if dialect == "postgresql":
        conn.exec_driver_sql(_PG_INSERTS["vocabulary"], pg_columns(ordered, "ttf"))
    else:
        conn.exec_driver_sql(_INSERTS["vocabulary"].format("?"), ordered)
    return wanted


# PostgreSQL takes each table's rows as one binary array per column (see
# notifier.storage.outbox): one short statement per table, whatever the batch's size.
_PG_INSERTS = {
    "facts": "INSERT INTO message_facts (message_id, timestamp, topic, app, severity, agent) "
             "SELECT * FROM unnest(%b::int8[], %b::float8[], %b::text[], %b::text[], "
             "%b::text[], %b::text[]) ON CONFLICT DO NOTHING",
    "terms": "INSERT INTO message_terms (kind, value, timestamp, message_id) "
             "SELECT * FROM unnest(%b::text[], %b::text[], %b::float8[], %b::int8[]) "
             "ON CONFLICT DO NOTHING",
    "vocabulary": "INSERT INTO history_terms (kind, value, last_seen) "
                  "SELECT * FROM unnest(%b::text[], %b::text[], %b::float8[]) "
                  "ON CONFLICT (kind, value) DO UPDATE SET last_seen = excluded.last_seen "
                  "WHERE excluded.last_seen > history_terms.last_seen",
}


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
    """``(artifact key, kind, name)`` for each artifact owned by one of ``names``.

    With ``packages`` (artifact keys), only for those.
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
