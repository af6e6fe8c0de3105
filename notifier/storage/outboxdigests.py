"""The outbox's digest operations: what is held, and a digest queued in place of its items.

A mixin of :class:`~notifier.storage.outbox.Outbox`, which provides ``store``,
``clock``, ``_insert`` and ``_skip_locked``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update

from ..notification import Notification
from .outboxrows import OutboxRow, decode, literal
from .schema import digest_state, outbox
from .store import Store


class DigestRows:
    """Rows held for digests, and queuing a digest (see the module docstring)."""

    store: Store
    clock: Callable[[], float]
    _insert: Any
    _skip_locked: bool

    def held_groups(self) -> list[tuple[str, str, int, float]]:
        """``(user, destination, count, oldest created_at)`` of rows held for digests."""
        with self.store._transaction("read held notifications", write=False) as conn:
            q = (select(outbox.c.user, outbox.c.destination, func.count(),
                        func.min(outbox.c.created_at))
                 .where(outbox.c.state == "held")
                 .group_by(outbox.c.user, outbox.c.destination))
            return [(r[0], r[1], r[2], r[3]) for r in conn.execute(q)]

    def last_window(self, user: str, destination: str) -> int | None:
        with self.store._transaction("read the digest state", write=False) as conn:
            return conn.execute(select(digest_state.c.last_window).where(
                digest_state.c.user == user, digest_state.c.destination == destination)).scalar()

    def held(self, user: str, destination: str, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` rows held for ``user``'s digest on ``destination``."""
        with self.store._transaction("read held notifications", write=False) as conn:
            q = (select(outbox).where(outbox.c.user == user,
                                      outbox.c.destination == destination,
                                      outbox.c.state == literal("held"))
                 .order_by(outbox.c.id).limit(limit))
            return [decode(r) for r in conn.execute(q)]

    def commit_digest(self, digest: Notification, items: list[OutboxRow], window: int,
                      *, seen_window: int | None | object = ...) -> bool:
        """Queue ``digest`` and mark ``items`` as digested, in one transaction.

        Returns False (changing nothing) if any item was digested meanwhile, so
        no item can go out in two digests; and, given ``seen_window`` (the
        :meth:`last_window` the digest was decided on), if another worker
        queued a digest for that user and destination since.
        """
        now = self.clock()
        ids = [i.id for i in items]
        try:
            with self.store._transaction("queue a digest") as conn:
                changed = conn.execute(update(outbox).where(outbox.c.id.in_(ids),
                                                            outbox.c.state == "held")
                                       .values(state="digested", sent_at=now)).rowcount
                if changed != len(ids):
                    raise _Conflict
                if seen_window is not ... and self._last_window(
                        conn, digest.user, digest.destination) != seen_window:
                    raise _Conflict
                self._queue_digest(conn, digest, now, window)
        except _Conflict:
            return False
        return True

    def _last_window(self, conn: Any, user: str, destination: str) -> int | None:
        """The digest window last sent, its row locked until the transaction ends."""
        q = select(digest_state.c.last_window).where(digest_state.c.user == user,
                                                     digest_state.c.destination == destination)
        if self._skip_locked:
            q = q.with_for_update()
        return conn.execute(q).scalar()  # type: ignore[no-any-return]

    def _queue_digest(self, conn: Any, digest: Notification, now: float, window: int) -> None:
        conn.execute(self._insert(outbox).values(
            user=digest.user, msg_id=digest.msg_id, destination=digest.destination,
            state="pending", attempts=0, next_attempt=now, created_at=now,
            notification=digest.to_dict()))
        upsert = self._insert(digest_state).values(
            user=digest.user, destination=digest.destination, last_sent=now, last_window=window)
        conn.execute(upsert.on_conflict_do_update(
            index_elements=["user", "destination"],
            set_={"last_sent": now, "last_window": window}))


class _Conflict(Exception):
    """Rolls back a digest whose items changed under it."""
