"""Storing the matcher's snapshot (table ``rule_snapshots``) and telling whether it is current.

The bytes are made and read by :mod:`notifier.rules.snapshot`; this module
keeps them with what says whether they still describe the database: the
change-log position they reflect (``change_seq``) and that entry's
fingerprint (``change_mark``). The change log only loses its oldest
entries (:meth:`~notifier.storage.Store.prune_changes`), so while the
entry at ``change_seq`` is still there, unchanged, every change after it
is too, and replaying them brings the snapshot up to date.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import delete, func, select

from .schema import changes as change_log
from .schema import rule_snapshots
from .store import Store

#: the snapshot of the whole matcher, as ``notifier serve`` and ``notifier match`` use it
MATCHER = "matcher"


class StoredSnapshot(NamedTuple):
    """One stored snapshot and what it was made from."""

    format: int
    change_seq: int
    change_mark: str | None
    destinations: str
    rules: int
    digest: str
    created_at: float
    data: bytes


def _mark(row: Any) -> str:
    return "\x1f".join(str(v) for v in (row.seq, row.kind, row.op, row.key1, row.key2,
                                         row.key3, repr(row.at)))


def position(store: Store) -> tuple[int, str | None]:
    """The newest change-log entry's sequence number and fingerprint; ``(0, None)`` if empty."""
    with store._transaction("read the change log", write=False) as conn:
        seq = conn.execute(select(func.max(change_log.c.seq))).scalar() or 0
        if not seq:
            return 0, None
        row = conn.execute(select(change_log).where(change_log.c.seq == seq)).first()
    return seq, None if row is None else _mark(row)


def mark_of(store: Store, seq: int) -> str | None:
    """The fingerprint of change-log entry ``seq``; None when it is not there."""
    with store._transaction("read the change log", write=False) as conn:
        row = conn.execute(select(change_log).where(change_log.c.seq == seq)).first()
    return None if row is None else _mark(row)


def is_current(store: Store, change_seq: int, change_mark: str | None) -> str | None:
    """Why a snapshot at ``change_seq`` can no longer be brought up to date; None if it can."""
    with store._transaction("read the change log", write=False) as conn:
        if change_seq == 0:
            newest = conn.execute(select(func.max(change_log.c.seq))).scalar() or 0
            return None if newest == 0 else \
                "made on an empty change log, which has entries now (some may be pruned)"
        row = conn.execute(select(change_log).where(change_log.c.seq == change_seq)).first()
    if row is None:
        return f"change {change_seq}, where it was made, is no longer in the change log"
    if _mark(row) != change_mark:
        return f"change {change_seq}, where it was made, is not the same entry any more"
    return None


def read(store: Store, name: str = MATCHER) -> StoredSnapshot | None:
    """The stored snapshot ``name``, or None."""
    with store._transaction("read the rules snapshot", write=False) as conn:
        row = conn.execute(select(rule_snapshots).where(rule_snapshots.c.name == name)).first()
    if row is None:
        return None
    return StoredSnapshot(row.format, row.change_seq, row.change_mark, row.destinations,
                          row.rules, row.digest, row.created_at, bytes(row.data))


def write(store: Store, snapshot: StoredSnapshot, name: str = MATCHER) -> None:
    """Store ``snapshot`` as ``name``, in place of the one there."""
    with store._transaction("write the rules snapshot") as conn:
        conn.execute(delete(rule_snapshots).where(rule_snapshots.c.name == name))
        conn.execute(rule_snapshots.insert().values(name=name, **snapshot._asdict()))


def kept_seq(store: Store, name: str = MATCHER) -> int | None:
    """The change-log position of the stored snapshot (pruning must keep it), or None."""
    with store._transaction("read the rules snapshot", write=False) as conn:
        return conn.execute(select(rule_snapshots.c.change_seq)
                            .where(rule_snapshots.c.name == name)).scalar()


def drop(store: Store, name: str = MATCHER) -> bool:
    """Delete the stored snapshot; whether there was one."""
    with store._transaction("delete the rules snapshot") as conn:
        return conn.execute(delete(rule_snapshots)
                            .where(rule_snapshots.c.name == name)).rowcount > 0
