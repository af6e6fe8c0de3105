"""Each rule's sends per day: counted with the inbox rows, summed, pruned, filled on upgrade."""

from __future__ import annotations

import pytest
from alembic import command

from notifier.storage import Store, migrate
from notifier.storage.inbox import Inbox, inbox_row, write_rows
from notifier.storage.rulecounts import DAY, sent_by_rule

pytestmark = pytest.mark.integration

START = 20_000 * DAY  # midnight UTC


def rows(user: str, n: int, rules: list[str], tag: str) -> list[dict[str, object]]:
    return [inbox_row(user, f"{tag}-{i}", title="t", link=None, app="koji", topic="x.y",
                      severity="info", timestamp=START, rules=rules) for i in range(n)]


def write(store: Store, batch: list[dict[str, object]], now: float) -> None:
    with store._transaction("test rows", write=True) as conn:
        write_rows(conn, batch, now)


def test_each_rule_counts_once_per_message_by_day(store: Store) -> None:
    write(store, rows("alice", 3, ["mine", "topics"], "a"), START + 10)
    write(store, rows("alice", 2, ["mine"], "b"), START + 20)
    write(store, rows("alice", 4, ["topics"], "c"), START + 3 * DAY)
    write(store, rows("bob", 5, ["mine"], "d"), START + 3 * DAY)
    # A message heard twice in one batch is one inbox row, and one send.
    write(store, rows("alice", 1, ["mine"], "e") * 2, START + 3 * DAY)

    assert sent_by_rule(store, "alice", START) == {"mine": 6, "topics": 7}
    # From the day of "since" on, whole days: the first day is left out from its end on.
    assert sent_by_rule(store, "alice", START + DAY - 1) == {"mine": 6, "topics": 7}
    assert sent_by_rule(store, "alice", START + DAY) == {"mine": 1, "topics": 4}
    assert sent_by_rule(store, "bob", START) == {"mine": 5}
    assert sent_by_rule(store, "carol", START) == {}


def test_prune_drops_the_counts_of_the_days_it_empties(store: Store) -> None:
    for day in range(5):
        write(store, rows("alice", 1, ["mine"], f"d{day}"), START + day * DAY + 5)
    inbox = Inbox(store, clock=lambda: START + 4 * DAY + 10)
    # The cutoff is in day 2, after its row: rows of days 0 to 2 go, and the
    # counts of the days wholly before the cutoff (days 0 and 1).
    assert inbox.prune(2 * DAY) == 3
    assert sent_by_rule(store, "alice", 0) == {"mine": 3}


def test_upgrade_counts_the_inbox_rows_stored_before(store: Store) -> None:
    write(store, rows("alice", 3, ["mine", "topics"], "a"), START + 10)
    write(store, rows("alice", 2, ["mine"], "b"), START + DAY + 10)
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0011")
    store.upgrade()
    assert sent_by_rule(store, "alice", START) == {"mine": 5, "topics": 3}
    assert sent_by_rule(store, "alice", START + DAY) == {"mine": 2}
