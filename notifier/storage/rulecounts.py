"""How many notifications each of a user's rules sent since a time, from the inbox."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from .schema import inbox
from .store import Store


def sent_by_rule(store: Store, user: str, since: float) -> dict[str, int]:
    """Rule name to the number of messages it sent ``user`` since ``since``.

    The inbox holds one row per message and user, naming the rules that
    matched, whatever the destinations: a message counts once per rule.
    """
    query = select(inbox.c.rules).where(inbox.c.user == user, inbox.c.created_at >= since)
    counts: Counter[str] = Counter()
    with store._transaction(f"count the notifications of {user!r}", write=False) as conn:
        for (rules,) in conn.execute(query):
            counts.update(rule for rule in rules or () if isinstance(rule, str))
    return dict(counts)
