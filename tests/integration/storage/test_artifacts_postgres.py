"""Containers, modules and flatpaks on PostgreSQL: owned, indexed and previewed as on SQLite."""

from __future__ import annotations

import pytest

from notifier.storage import Store, termquery
from notifier.storage.history_index import HistoryIndex
from tests.integration.test_storage_postgres import _schema_url, schemas  # noqa: F401
from tests.unit.rules.test_artifact_rules import NAMES, assert_previews_equal_the_scan, fill

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dense", [termquery.DENSE, 3], ids=["gathered", "walked"])
def test_the_preview_of_each_kind_equals_the_full_scan(schemas: list[str],  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       dense: int) -> None:
    monkeypatch.setattr(termquery, "DENSE", dense)
    with Store(_schema_url(schemas)) as store:
        describer, now = fill(store)
        assert HistoryIndex(store).unindexed() == 0
        assert sorted(o for o in store.ownership() if "/" in o[0]) == [
            ("containers/firefox", "user", "bob"),
            ("containers/toolbox", "group", "desktop-sig"),
            ("flatpaks/firefox", "group", "desktop-sig"), ("flatpaks/firefox", "user", "carol"),
            ("modules/firefox", "group", "mod-sig")]
        assert HistoryIndex(store).packages("containers/") == sorted(
            f"containers/{name}" for name in NAMES)
        assert_previews_equal_the_scan(store, describer, now)
