"""How many notifications each of a user's rules sent since a time."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from .schema import outbox
from .store import Store

SENT_STATES = ("sent", "digested")


def sent_by_rule(store: Store, user: str, since: float) -> dict[str, int]:
    """Rule name to the number of messages it sent ``user`` since ``since``.

    A message sent to several destinations counts once per rule.
    """
    query = select(outbox.c.msg_id, outbox.c.notification).where(
        outbox.c.user == user, outbox.c.state.in_(SENT_STATES), outbox.c.created_at >= since)
    seen: set[tuple[str, str]] = set()
    with store._transaction(f"count the notifications of {user!r}", write=False) as conn:
        for msg_id, notification in conn.execute(query):
            rules = notification.get("rules") if isinstance(notification, dict) else None
            for rule in rules or ():
                if isinstance(rule, str):
                    seen.add((rule, msg_id))
    return dict(Counter(rule for rule, _ in seen))
