"""The history's index on PostgreSQL: the preview equals the full scan; look-ups; upgrade."""

from __future__ import annotations

import time

import pytest
from alembic import command
from sqlalchemy import text

from notifier.meta import Describer
from notifier.storage import Store, migrate, termquery, terms
from notifier.storage.history_index import HistoryIndex
from tests.history_mix import OWNERS, history, preview_config
from tests.integration.test_storage_postgres import _schema_url, schemas  # noqa: F401
from tests.unit.rules.test_preview import assert_preview_equals_scan

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dense", [termquery.DENSE, 3], ids=["gathered", "walked"])
def test_preview_equals_the_full_scan(schemas: list[str],  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch, dense: int) -> None:
    monkeypatch.setattr(termquery, "DENSE", dense)
    now = time.time()
    with Store(_schema_url(schemas)) as store:
        store.apply_ownership(OWNERS["packages"])
        describer = Describer(preview_config(store.url))
        assert store.store_messages(history(600, now), describer.describe) == 600
        assert HistoryIndex(store).unindexed() == 0
        assert_preview_equals_scan(store, describer, now)


def test_lookups_compare_bytes_and_prefixes_are_ranges(schemas: list[str]) -> None:  # noqa: F811
    now = time.time()
    with Store(_schema_url(schemas)) as store:
        describer = Describer(preview_config(store.url))
        store.store_messages(history(300, now), describer.describe)
        store.apply_ownership({"Kernel-x": {"users": ["Zed"]}, "kernel_y": {"users": ["zed"]}})
        index = HistoryIndex(store)
        assert index.applications() == ["bodhi", "copr", "distgit", "koji", "pagure"]
        assert index.packages("kernel") == ["kernel", "kernel-headers", "kernel_y"]
        assert index.packages("K") == ["Kernel-x"]
        assert index.packages("ñ") == ["ñandú"]
        assert index.users("z") == ["zed", "zoë"]
        assert index.groups("Ω") == ["Ω-team"]


def test_upgrade_marks_the_messages_stored_before_the_index(schemas: list[str]  # noqa: F811
                                                              ) -> None:
    url = _schema_url(schemas)
    now = time.time()
    with Store(url) as store:
        describer = Describer(preview_config(store.url))
        with store.engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0007")
        store.store_messages(history(50, now))
        store.upgrade()
        with store._transaction("check", write=False) as conn:
            top = conn.execute(text("SELECT max(id) FROM messages")).scalar()
            assert terms.unindexed_upto(conn) == top
        index = HistoryIndex(store)
        assert index.unindexed() == 50
        assert index.reindex(describer.describe) == (50, 0)
        with store._transaction("check", write=False) as conn:
            assert terms.unindexed_upto(conn) is None
        assert index.applications() == ["bodhi", "copr", "distgit", "koji", "pagure"]
