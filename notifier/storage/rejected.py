"""Rejected bus messages: the newest few thousand, with why, for ``notifier history rejected``.

``notifier serve`` rejects a message that fails a check or a stage (see
:data:`notifier.bus.checks.REASONS`) and keeps it here: when, the reason, the
detail, what it said its ``msg_id`` and topic were, and the envelope frame as
received, cut to :data:`PAYLOAD_LIMIT` bytes. Rows are written a batch at a
time, so a flood of bad messages costs one transaction per batch, and the
table is trimmed to the newest ``keep`` rows in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from .schema import rejected_messages
from .store import Store

#: bytes of the envelope frame kept
PAYLOAD_LIMIT = 16384
#: characters kept of the detail and the topic
TEXT_LIMIT = 2000
_ID_LIMIT = 300


def clean_text(value: str | bytes | None, limit: int = TEXT_LIMIT) -> str | None:
    """``value`` as text any database stores: cut, NUL and lone surrogates escaped."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value[:limit * 4].decode("utf-8", "backslashreplace")
    value = value[:limit]
    if not value.isascii():
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


@dataclass(frozen=True)
class RejectedMessage:
    """One rejected message; build it with :meth:`make`, which bounds and cleans it."""

    at: float
    reason: str
    detail: str
    msg_id: str | None
    topic: str | None
    payload: bytes
    size: int

    @classmethod
    def make(cls, at: float, reason: str, detail: str, *, msg_id: str | None = None,
             topic: str | bytes | None = None, payload: bytes = b"",
             size: int | None = None) -> RejectedMessage:
        """``size`` is the payload's whole length, when ``payload`` was cut already."""
        return cls(at=at, reason=clean_text(reason, 32) or "", detail=clean_text(detail) or "",
                   msg_id=clean_text(msg_id, _ID_LIMIT), topic=clean_text(topic),
                   payload=bytes(payload[:PAYLOAD_LIMIT]),
                   size=len(payload) if size is None else size)

    @property
    def truncated(self) -> bool:
        return self.size > len(self.payload)

    def to_dict(self) -> dict[str, Any]:
        """For ``--json``: the payload as text, undecodable bytes as ``\\xNN``."""
        return {"at": self.at, "reason": self.reason, "detail": self.detail,
                "msg_id": self.msg_id, "topic": self.topic,
                "payload": self.payload.decode("utf-8", "backslashreplace"),
                "size": self.size, "truncated": self.truncated}


class RejectedStore:
    """The ``rejected_messages`` table of ``store``, holding at most ``keep`` rows."""

    def __init__(self, store: Store, keep: int = 10000):
        self.store = store
        self.keep = max(0, keep)

    def add(self, rejected: Iterable[RejectedMessage]) -> int:
        """Write ``rejected`` in one transaction and trim to the newest ``keep``; how many."""
        rows = [{"at": r.at, "reason": r.reason, "detail": r.detail, "msg_id": r.msg_id,
                 "topic": r.topic, "payload": r.payload, "size": r.size} for r in rejected]
        if not rows or self.keep == 0:
            return 0
        rows = rows[-self.keep:]
        with self.store._transaction("keep rejected messages") as conn:
            conn.execute(rejected_messages.insert(), rows)
            newest = conn.execute(select(func.max(rejected_messages.c.id))).scalar() or 0
            if newest > self.keep:
                conn.execute(delete(rejected_messages).where(
                    rejected_messages.c.id <= newest - self.keep))
        return len(rows)

    def list(self, since: float | None = None, reason: str | None = None,
             limit: int | None = None) -> list[RejectedMessage]:
        """Kept rows, oldest first: those since ``since`` (epoch seconds), of ``reason``.

        With ``limit``, the newest ``limit`` of them.
        """
        query = select(rejected_messages).order_by(rejected_messages.c.id.desc())
        if since is not None:
            query = query.where(rejected_messages.c.at >= since)
        if reason is not None:
            query = query.where(rejected_messages.c.reason == reason)
        if limit is not None:
            query = query.limit(limit)
        with self.store._transaction("read rejected messages", write=False) as conn:
            rows = conn.execute(query).all()
        return [RejectedMessage(at=r.at, reason=r.reason, detail=r.detail, msg_id=r.msg_id,
                                topic=r.topic, payload=bytes(r.payload), size=r.size)
                for r in reversed(rows)]

    def count(self) -> int:
        with self.store._transaction("count rejected messages", write=False) as conn:
            return conn.execute(select(func.count()).select_from(rejected_messages)).scalar() \
                or 0
