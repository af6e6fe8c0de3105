"""The indexed rule preview answers what describing and matching every message answers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from notifier.meta import Describer
from notifier.rules import parse_rule
from notifier.rules.preview import RulePreview, scan
from notifier.storage import Store, termquery, terms
from notifier.storage.history_index import HistoryIndex
from tests.history_mix import OWNERS, history, preview_config, rules

WEEK = 7 * 86400


def assert_preview_equals_scan(store: Store, describer: Describer, now: float) -> None:
    """For every rule of the mix: the same matches, in order, and the same counts."""
    preview = RulePreview(store, describer)
    since = now - WEEK
    sizes = []
    for data in rules():
        rule = parse_rule(data, source="test")
        want = [row.msg_id for row, record in scan(store, describer, rule, since)
                if record is not None]
        want.reverse()  # newest first
        got = [m.msg_id for m in preview.matches(rule, since, page=7)]
        assert got == want, data
        shown = preview.preview(rule, since, limit=5, bound=40)
        assert [m.msg_id for m in shown.matches] == want[:5], data
        assert shown.total == min(len(want), 40), data
        assert shown.total_exact == (len(want) <= 40), data
        sizes.append(len(want))
    # The mix is varied: rules that match nothing, a few, and many.
    assert 0 in sizes and max(sizes) > 40 and any(0 < n < 40 for n in sizes)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as opened:
        opened.apply_ownership(OWNERS["packages"])
        yield opened


@pytest.mark.parametrize("dense", [termquery.DENSE, 3], ids=["gathered", "walked"])
def test_preview_equals_the_full_scan(store: Store, monkeypatch: pytest.MonkeyPatch,
                                      dense: int) -> None:
    monkeypatch.setattr(termquery, "DENSE", dense)
    now = time.time()
    describer = Describer(preview_config(store.url))
    assert store.store_messages(history(800, now), describer.describe) == 800
    with store._transaction("check", write=False) as conn:
        assert terms.count_unindexed(conn) == 0
    assert_preview_equals_scan(store, describer, now)


def test_messages_stored_before_the_index_are_previewed_then_reindexed(store: Store) -> None:
    now = time.time()
    describer = Describer(preview_config(store.url))
    envelopes = history(500, now)
    store.store_messages(envelopes[:300])  # as before the index existed
    with store._transaction("mark") as conn:
        top = conn.exec_driver_sql("SELECT max(id) FROM messages").scalar()
        terms.set_unindexed_upto(conn, top)
    store.store_messages(envelopes[300:], describer.describe)
    index = HistoryIndex(store)
    assert index.unindexed() == 300
    assert_preview_equals_scan(store, describer, now)
    rule = parse_rule(rules()[0], source="test")
    assert RulePreview(store, describer).preview(rule, now - WEEK).unindexed > 0

    batches: list[int] = []
    assert index.reindex(describer.describe, progress=batches.append) == (300, 0)
    assert sum(batches) == 300 and index.unindexed() == 0
    with store._transaction("check", write=False) as conn:
        assert terms.unindexed_upto(conn) is None
    assert RulePreview(store, describer).preview(rule, now - WEEK).unindexed == 0
    assert_preview_equals_scan(store, describer, now)
    # Everything again, as after a change to the mappings: the same index.
    assert index.reindex(describer.describe, everything=True) == (500, 0)
    assert_preview_equals_scan(store, describer, now)


def test_prune_forgets_the_index_of_what_it_deletes(store: Store) -> None:
    now = time.time()
    describer = Describer(preview_config(store.url))
    store.store_messages(history(200, now), describer.describe)
    store.prune_history(5 * 86400, now=now)
    with store._transaction("check", write=False) as conn:
        kept = conn.exec_driver_sql("SELECT count(*) FROM messages").scalar()
        assert 0 < kept < 200
        assert conn.exec_driver_sql("SELECT count(*) FROM message_facts").scalar() == kept
        assert conn.exec_driver_sql(
            "SELECT count(DISTINCT message_id) FROM message_terms").scalar() == kept
        oldest = conn.exec_driver_sql("SELECT min(last_seen) FROM history_terms").scalar()
        assert oldest >= now - 5 * 86400
