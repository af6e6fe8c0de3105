"""An outbox row as the outbox hands it out, and the helpers its modules share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam

from ..notification import Notification

#: rows written or looked up in one statement at most
CHUNK = 1000


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row, with its notification decoded."""

    id: int
    user: str
    msg_id: str
    destination: str
    state: str
    attempts: int
    next_attempt: float
    created_at: float
    sent_at: float | None
    last_error: str | None
    notification: Notification
    #: when the claim that handed this row out runs out (None: not claimed)
    claimed_until: float | None = None
    #: the worker that claimed it (None: a lease alone)
    claimed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.user, "msg_id": self.msg_id,
                "destination": self.destination, "state": self.state,
                "attempts": self.attempts, "next_attempt": self.next_attempt,
                "created_at": self.created_at, "sent_at": self.sent_at,
                "last_error": self.last_error}


def literal(value: str) -> Any:
    """``value`` written into the SQL, so a planner sees it: a partial index is on it."""
    return bindparam(None, value, literal_execute=True)


def chunks(items: list[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    """``items`` in lists of ``size`` at most."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def decode(r: Any) -> OutboxRow:
    """The :class:`OutboxRow` of a row of the table ``outbox``."""
    return OutboxRow(id=r.id, user=r.user, msg_id=r.msg_id, destination=r.destination,
                     state=r.state, attempts=r.attempts, next_attempt=r.next_attempt,
                     created_at=r.created_at, sent_at=r.sent_at, last_error=r.last_error,
                     notification=Notification.from_dict(r.notification),
                     claimed_until=r.claimed_until, claimed_by=r.claimed_by)
