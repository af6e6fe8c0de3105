"""The durable outbox: every notification is a row before anything is sent.

Messages enter the history and their notifications enter the outbox in one
transaction (:meth:`Outbox.record`), so after a crash every message that
reached the history still has all of its notifications. Workers
:meth:`claim` due rows for one destination; a claim is a lease, so a row taken
by a process that died is taken again once the lease runs out.

With a claimant (a :class:`~notifier.storage.workers.Registry`: several
``notifier serve`` on one database), each claim also names the worker that
took it (``claimed_by``), and counts only while that worker's heartbeat is
fresh: the rows of a worker that died are taken again within
:data:`~notifier.storage.workers.DEAD_AFTER` seconds.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..backoff import backoff_delay
from ..bus.envelope import message_id
from ..notification import Notification
from . import terms
from .engine import insert_ignoring
from .feeds import NewFeedItem, write_items
from .history import message_time
from .inbox import write_rows as write_inbox
from .outboxdigests import DigestRows
from .outboxrows import CHUNK, OutboxRow
from .outboxrows import chunks as _chunks
from .outboxrows import decode as _row
from .outboxrows import literal as _literal
from .outboxwrite import insert_messages_pg, insert_outbox_pg, insert_outbox_sqlite
from .schema import messages, outbox, settings, workers
from .store import Store
from .workers import DEAD_AFTER

DUE_STATES = ("pending", "failed")
#: seconds a claim lasts: a row claimed by a process that died is due again after that
LEASE = 120.0
#: seconds of claim a row must have left to be handed out or sent: enough for one send
CLAIM_MARGIN = 60.0
ALL_STATES = ("pending", "failed", "sent", "dead", "held", "digested")
_CHUNK = CHUNK
#: rows per statement of the PostgreSQL insert path (one array per column)
_PG_CHUNK = 5000


class Claimant(Protocol):
    """Who claims rows: a worker id, and whether a claim made for an id is still its own."""

    @property
    def id(self) -> str | None: ...

    def holds(self, claimed_by: str | None) -> bool: ...


class Outbox(DigestRows):
    """Outbox operations on a :class:`~notifier.storage.Store`'s database.

    The digests' operations (:meth:`held`, :meth:`commit_digest` ...) are those
    of :class:`~.outboxdigests.DigestRows`.

    ``claimant``: the worker whose claims these are (see the module docstring);
    without one, claims are leases alone.
    """

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 claimant: Claimant | None = None):
        self.store = store
        self.clock = clock
        self.claimant = claimant
        self._dialect = dialect = store.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._skip_locked = dialect == "postgresql"

    # -- writing -----------------------------------------------------------

    def record(self, envelopes: list[dict[str, Any]],
               notifications: Iterable[tuple[Notification, str] | tuple[Notification, str,
                                                                         str | None]]
               ) -> tuple[int, int]:
        """Store ``envelopes`` in the history and ``notifications`` in the outbox, atomically.

        ``notifications`` pairs each notification with its first state
        (``pending``, ``held`` for a digest, ``sent`` for one delivered by
        being stored, such as the live stream's, or ``dead`` for one nothing
        can deliver), optionally followed by the row's ``last_error``. Returns
        how many messages and notifications were new; duplicates are skipped.
        """
        new_messages, new_notifications, _claimed = self.record_and_claim(
            envelopes, notifications)
        return new_messages, new_notifications

    def record_and_claim(self, envelopes: list[dict[str, Any]],
                         notifications: Iterable[tuple[Notification, str] | tuple[
                             Notification, str, str | None]],
                         claim: Container[str] | Mapping[str, int] = (),
                         lease: float = LEASE, *, inbox: Iterable[dict[str, Any]] = (),
                         described: Sequence[Mapping[str, Any] | None] = (),
                         feeds: Sequence[NewFeedItem] = (), feed_keep: int = 1
                         ) -> tuple[int, int, list[OutboxRow]]:
        """:meth:`record`, and claim the new pending rows of the destinations in ``claim``.

        The claimed rows are written already leased for ``lease`` seconds and
        returned, so the caller can hand them to its workers without a
        :meth:`claim` round trip. A mapping for ``claim`` gives, for each
        destination, how many rows to claim at most; the rest stay unclaimed
        for any worker. ``inbox`` rows (:func:`notifier.storage.inbox.inbox_row`)
        are written in the same transaction, those of messages new to the history
        only. ``described`` (the described record of each envelope, or None)
        indexes the new messages for the rule preview (:mod:`.terms`). ``feeds``
        are feed items stored in the same transaction, each user keeping its
        newest ``feed_keep`` (:func:`~notifier.storage.feeds.write_items`): the
        feed's notifications, recorded ``sent``; only those whose row is new
        are stored. Returns
        ``(new messages, new notifications, claimed rows)``.
        """
        now = self.clock()
        history: dict[str, dict[str, Any]] = {}
        records: dict[str, Mapping[str, Any]] = {}
        for index, envelope in enumerate(envelopes):
            msg_id = message_id(envelope)
            if index < len(described) and described[index] is not None:
                records.setdefault(msg_id, described[index])  # type: ignore[arg-type]
            stamp = message_time(envelope)
            history.setdefault(msg_id, {"msg_id": msg_id,
                                        "topic": str(envelope.get("topic") or ""),
                                        "timestamp": now if stamp is None else stamp,
                                        "envelope": envelope})
        claimed_until = now + lease
        claimed_by = self._claimed_by()
        rows = []
        taken: dict[tuple[str, str, str], Notification] = {}
        first: set[tuple[str, str, str]] = set()
        room = dict(claim) if isinstance(claim, Mapping) else None
        for item in notifications:
            n, state = item[0], item[1]
            error = item[2] if len(item) > 2 else None
            key = (n.user, n.msg_id, n.destination)
            leased = False
            # Of duplicates in one batch only the first is inserted: claim it only if it is
            # the pending one.
            if key not in first:
                first.add(key)
                leased = state == "pending" and n.destination in claim
                if leased and room is not None:
                    leased = room[n.destination] > 0
                    room[n.destination] -= 1
                if leased:
                    taken[key] = n
            rows.append({"user": n.user, "msg_id": n.msg_id, "destination": n.destination,
                         "state": state, "attempts": 0, "next_attempt": now, "created_at": now,
                         "claimed_until": claimed_until if leased else None,
                         "claimed_by": claimed_by if leased else None,
                         "sent_at": now if state == "sent" else None,
                         "last_error": None if error is None else error[:2000],
                         "notification": n.to_dict()})
        new_messages = new_notifications = 0
        claimed: list[OutboxRow] = []
        written: dict[tuple[str, str], float] = {}
        vocabulary: dict[tuple[str, str], float] = {}
        new_feed: set[tuple[str, str]] = set()
        pg = self._dialect == "postgresql"
        with self.store._transaction("record messages and notifications") as conn:
            fresh: set[str] = set()
            if history:
                stmt = insert_ignoring(self._dialect, messages, ["msg_id"]).returning(
                    messages.c.id, messages.c.msg_id)
                for chunk in _chunks(list(history.values()), _PG_CHUNK if pg else _CHUNK):
                    new = insert_messages_pg(conn, chunk) if pg else conn.execute(
                        stmt, chunk).all()
                    fresh.update(r.msg_id for r in new)
                    if records:
                        index = terms.index_rows(
                            (r.id, history[r.msg_id]["timestamp"], records[r.msg_id])
                            for r in new if r.msg_id in records)
                        terms.write_index(conn, self._dialect, index, vocabulary=False,
                                          fresh=True)
                        for key, stamp in index.vocabulary.items():
                            if vocabulary.get(key, -math.inf) < stamp:
                                vocabulary[key] = stamp
                new_messages = len(fresh)
            if rows:
                for chunk in _chunks(rows, _PG_CHUNK if pg else _CHUNK):
                    for r in (insert_outbox_pg(conn, chunk) if pg else
                              insert_outbox_sqlite(conn, chunk)):
                        new_notifications += 1
                        if r.destination == "rss":
                            new_feed.add((r.user, r.msg_id))
                        # Only the first of duplicates in one batch is inserted, and only once.
                        n = taken.pop((r.user, r.msg_id, r.destination), None)
                        if n is not None:
                            claimed.append(OutboxRow(
                                id=r.id, user=r.user, msg_id=r.msg_id,
                                destination=r.destination, state="pending", attempts=0,
                                next_attempt=now, created_at=now, sent_at=None,
                                last_error=None, notification=n, claimed_until=claimed_until,
                                claimed_by=claimed_by))
            # Only with a new row: a message the bus delivers again is not stored again.
            stored = [item for item in feeds if (item.user, item.msg_id) in new_feed]
            if stored:
                write_items(conn, stored, feed_keep, now)
            # Last, what other workers' transactions update too (the rules' counts, the
            # vocabulary): they wait for this one's rows until it commits.
            if inbox and fresh:
                write_inbox(conn, [r for r in inbox if r["msg_id"] in fresh], now)
            if vocabulary:
                written = terms.write_vocabulary(conn, self._dialect, vocabulary,
                                                 self.store.recent_terms)
        self.store.recent_terms.remember(written)
        claimed.sort(key=lambda row: row.id)
        return new_messages, new_notifications, claimed

    def release(self, rows: Iterable[OutboxRow]) -> int:
        """Give back claimed rows that were not attempted, so they are due again at once.

        Only claims that are still the caller's are given back: a row whose
        claim ran out and was taken by another worker keeps that worker's claim.
        """
        by_claim: dict[float, list[int]] = {}
        for row in rows:
            if row.claimed_until is not None:
                by_claim.setdefault(row.claimed_until, []).append(row.id)
        if not by_claim:
            return 0
        released = 0
        with self.store._transaction("release claimed notifications") as conn:
            for until, ids in by_claim.items():
                for chunk in _chunks(ids):
                    released += conn.execute(update(outbox).where(
                        outbox.c.id.in_(chunk), outbox.c.state.in_(DUE_STATES),
                        outbox.c.claimed_until == until)
                        .values(claimed_until=None, claimed_by=None)).rowcount
        return released

    # -- workers -----------------------------------------------------------

    def claim(self, destination: str, limit: int = 100, lease: float = LEASE,
              user: str | None = None) -> list[OutboxRow]:
        """Take up to ``limit`` due rows of ``destination`` for ``lease`` seconds.

        A row is free when it is not claimed, its claim ran out, or the worker
        that claimed it stopped beating. On PostgreSQL, rows another worker is
        claiming at the same moment are skipped (``FOR UPDATE SKIP LOCKED``).
        """
        now = self.clock()
        cond = and_(outbox.c.destination == destination, outbox.c.state.in_(DUE_STATES),
                    outbox.c.next_attempt <= now, self._free(now))
        if user is not None:
            cond = and_(cond, outbox.c.user == user)
        pick = select(outbox.c.id).where(cond).order_by(outbox.c.id).limit(limit)
        if self._skip_locked:
            pick = pick.with_for_update(skip_locked=True, of=outbox)
        with self.store._transaction("claim notifications") as conn:
            ids = [r.id for r in conn.execute(pick)]
            if not ids:
                return []
            conn.execute(update(outbox).where(outbox.c.id.in_(ids))
                         .values(claimed_until=now + lease, claimed_by=self._claimed_by()))
            result = conn.execute(select(outbox).where(outbox.c.id.in_(ids))
                                  .order_by(outbox.c.id))
            return [_row(r) for r in result]

    def mark_sent(self, ids: list[int]) -> None:
        """Record successful deliveries."""
        if not ids:
            return
        now = self.clock()
        with self.store._transaction("mark notifications sent") as conn:
            for chunk in _chunks(ids):
                conn.execute(update(outbox).where(outbox.c.id.in_(chunk)).values(
                    state="sent", sent_at=now, claimed_until=None, claimed_by=None,
                    last_error=None))

    def mark_failed(self, row: OutboxRow, error: str, *, permanent: bool, max_attempts: int,
                    base: float, cap: float, wait: float | None = None) -> str:
        """Record a failed attempt; return the new state (``failed`` or ``dead``).

        ``wait``: seconds the receiving end asked for (``Retry-After``): the next
        attempt comes no sooner, unless that is beyond ``cap``.
        """
        attempts = row.attempts + 1
        dead = permanent or attempts >= max_attempts
        state = "dead" if dead else "failed"
        delay = 0.0 if dead else backoff_delay(attempts - 1, base, cap)
        if wait is not None and not dead:
            delay = max(delay, min(wait, cap))
        next_attempt = self.clock() + delay
        with self.store._transaction("mark a notification failed") as conn:
            conn.execute(update(outbox).where(outbox.c.id == row.id).values(
                state=state, attempts=attempts, next_attempt=next_attempt,
                claimed_until=None, claimed_by=None, last_error=error[:2000]))
        return state

    def release_claims(self, *, dead_only: bool = False) -> int:
        """Forget every claim (a single service starting up owns all rows).

        ``dead_only``: only the claims of workers that stopped beating (several
        workers share the database; the live ones keep theirs).
        """
        # Only due rows are ever claimed; naming their states lets the state index find
        # them among the finished ones, which a long history makes almost all rows.
        cond = and_(outbox.c.state.in_(DUE_STATES), outbox.c.claimed_until.is_not(None))
        if dead_only:
            cond = and_(cond, self._void(self.clock()))
        with self.store._transaction("release claims") as conn:
            return conn.execute(update(outbox).where(cond).values(
                claimed_until=None, claimed_by=None)).rowcount

    def holds(self, row: OutboxRow) -> bool:
        """Whether this worker may still send ``row``, which it claimed (its heartbeat beats)."""
        return self.claimant is None or self.claimant.holds(row.claimed_by)

    def _claimed_by(self) -> str | None:
        return self.claimant.id if self.claimant is not None else None

    def _void(self, now: float) -> Any:
        """The row's claim names a worker whose heartbeat stopped (or that is gone)."""
        alive = select(workers.c.id).where(workers.c.id == outbox.c.claimed_by,
                                           workers.c.heartbeat > now - DEAD_AFTER)
        return and_(outbox.c.claimed_by.is_not(None), ~alive.exists())

    def _free(self, now: float) -> Any:
        """The row is not claimed, its lease ran out, or its worker died."""
        return or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now,
                   self._void(now))

    def next_due(self, destination: str, user: str | None = None) -> float | None:
        """When the earliest pending or failed row of ``destination`` can next be claimed.

        A claimed row counts from when its claim runs out (at once if its worker died).
        """
        due = case((and_(outbox.c.claimed_until > outbox.c.next_attempt,
                         ~self._void(self.clock())), outbox.c.claimed_until),
                   else_=outbox.c.next_attempt)
        cond = and_(outbox.c.destination == destination, outbox.c.state.in_(DUE_STATES))
        if user is not None:
            cond = and_(cond, outbox.c.user == user)
        with self.store._transaction("read the outbox", write=False) as conn:
            return conn.execute(select(func.min(due)).where(cond)).scalar()

    # -- reading and administration -----------------------------------------

    def rows(self, states: Iterable[str] | None = None, user: str | None = None,
             destination: str | None = None, after_id: int = 0, limit: int | None = None,
             *, users: Iterable[str] | None = None) -> list[OutboxRow]:
        """Rows in id order, filtered (``users``: of any of these users)."""
        q = select(outbox).where(outbox.c.id > after_id).order_by(outbox.c.id)
        if states is not None:
            q = q.where(outbox.c.state.in_(list(states)))
        if user is not None:
            q = q.where(outbox.c.user == user)
        if users is not None:
            q = q.where(outbox.c.user.in_(list(users)))
        if destination is not None:
            q = q.where(outbox.c.destination == _literal(destination))
        if limit is not None:
            q = q.limit(limit)
        with self.store._transaction("read the outbox", write=False) as conn:
            return [_row(r) for r in conn.execute(q)]

    def states(self, ids: Iterable[int]) -> dict[int, str]:
        """The state of each row of ``ids`` that exists."""
        found: dict[int, str] = {}
        with self.store._transaction("read the outbox", write=False) as conn:
            for chunk in _chunks(list(ids)):
                q = select(outbox.c.id, outbox.c.state).where(outbox.c.id.in_(chunk))
                found.update((row_id, state) for row_id, state in conn.execute(q))
        return found

    def last_id(self) -> int:
        """The highest row id, 0 for an empty outbox (rows after it are new)."""
        with self.store._transaction("read the outbox", write=False) as conn:
            return conn.execute(select(func.max(outbox.c.id))).scalar() or 0

    def retry(self, ids: Iterable[int] | None = None, states: Iterable[str] = ("dead",)) -> int:
        """Make rows due again now, with their attempts reset; return how many."""
        q = update(outbox).where(outbox.c.state.in_(list(states)))
        if ids is not None:
            q = q.where(outbox.c.id.in_(list(ids)))
        with self.store._transaction("retry notifications") as conn:
            return conn.execute(q.values(state="pending", attempts=0, next_attempt=self.clock(),
                                         claimed_until=None, claimed_by=None)).rowcount

    def counts(self) -> dict[tuple[str, str], int]:
        """Rows per ``(destination, state)``."""
        with self.store._transaction("count the outbox", write=False) as conn:
            q = select(outbox.c.destination, outbox.c.state, func.count()).group_by(
                outbox.c.destination, outbox.c.state)
            return {(d, s): n for d, s, n in conn.execute(q)}

    def depth(self) -> int:
        """How many notifications wait to be sent (pending or failed)."""
        with self.store._transaction("count the outbox", write=False) as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.state.in_(DUE_STATES))).scalar() or 0

    def oldest_due(self) -> float | None:
        """``created_at`` of the oldest row still waiting to be sent."""
        with self.store._transaction("read the outbox", write=False) as conn:
            return conn.execute(select(func.min(outbox.c.created_at)).where(
                outbox.c.state.in_(DUE_STATES))).scalar()

    def prune(self, older_than: float) -> int:
        """Delete finished rows (sent, digested, dead) created before ``older_than`` ago."""
        cutoff = self.clock() - older_than
        with self.store._transaction("prune the outbox") as conn:
            return conn.execute(delete(outbox).where(
                outbox.c.state.in_(("sent", "digested", "dead")),
                outbox.c.created_at < cutoff)).rowcount

    def secret(self) -> bytes:
        """This installation's secret for signed links, made on first use."""
        with self.store._transaction("read the installation secret") as conn:
            value = conn.execute(select(settings.c.value).where(
                settings.c.key == "link_secret")).scalar()
            if value is None:
                value = secrets.token_hex(32)
                conn.execute(insert_ignoring(self._dialect, settings, ["key"])
                             .values(key="link_secret", value=value))
                value = conn.execute(select(settings.c.value).where(
                    settings.c.key == "link_secret")).scalar()
        return bytes.fromhex(value)

