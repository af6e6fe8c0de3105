"""How many notifications each of a user's rules sent: counted per UTC day as they are sent.

:func:`count_sends` adds a batch of inbox rows to the ``rule_sends`` table, in
the transaction that writes them; :func:`sent_by_rule` sums a user's days.
Reading the counts costs a few rows per rule and day, however many
notifications there were.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .schema import rule_sends
from .store import Store

DAY = 86400


def day_of(timestamp: float) -> int:
    """The UTC day (days since the epoch) of ``timestamp``."""
    return int(timestamp // DAY)


# PostgreSQL takes the counts as one binary array per column (see notifier.storage.outbox).
_PG_UPSERT = (
    'INSERT INTO rule_sends ("user", day, rule, count) '
    "SELECT u, %s, r, c FROM unnest(%b::text[], %b::text[], %b::int4[]) AS x(u, r, c) "
    'ON CONFLICT ("user", day, rule) DO UPDATE SET count = rule_sends.count + excluded.count')


def count_sends(conn: Connection, rows: Iterable[dict[str, Any]], now: float) -> None:
    """Count each rule of each inbox row as one send on ``now``'s day, in ``conn``'s transaction."""
    day = day_of(now)
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for rule in row.get("rules") or ():
            if isinstance(rule, str) and rule:
                counts[(row["user"], rule[:255])] += 1
    if not counts:
        return
    if conn.dialect.name == "postgresql":
        ordered = sorted(counts.items())
        conn.exec_driver_sql(_PG_UPSERT, (day, [u for (u, _), _ in ordered],
                                          [r for (_, r), _ in ordered],
                                          [n for _, n in ordered]))
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(rule_sends)
    upsert = insert.on_conflict_do_update(
        index_elements=["user", "day", "rule"],
        set_={"count": rule_sends.c.count + insert.excluded.count})
    # Sorted, so that concurrent writers on PostgreSQL lock shared rows in one order.
    conn.execute(upsert, [{"user": user, "day": day, "rule": rule, "count": n}
                          for (user, rule), n in sorted(counts.items())])


def sent_by_rule(store: Store, user: str, since: float) -> dict[str, int]:
    """Rule name to the number of messages it sent ``user`` from the UTC day of ``since`` on.

    A message counts once per rule that matched it, whatever its destinations
    (the inbox's rows). Days are whole: ``since`` seven days ago counts from
    the start of that day.
    """
    query = (select(rule_sends.c.rule, func.sum(rule_sends.c.count))
             .where(rule_sends.c.user == user, rule_sends.c.day >= day_of(since))
             .group_by(rule_sends.c.rule))
    with store._transaction(f"count the notifications of {user!r}", write=False) as conn:
        return {rule: int(total) for rule, total in conn.execute(query)}


def prune_sends(conn: Connection, older_than: float) -> int:
    """Delete the counts of the days wholly before ``older_than``; return how many rows went."""
    return conn.execute(delete(rule_sends).where(rule_sends.c.day < day_of(older_than))).rowcount
