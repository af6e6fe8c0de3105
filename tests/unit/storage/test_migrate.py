"""The migrations' fast path: the shipped head from file names, Alembic only when needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from notifier.errors import StorageError
from notifier.storage import Store
from notifier.storage.migrate import head_revision, shipped_head


def test_the_head_read_off_the_file_names_is_alembics_head():
    assert shipped_head() == head_revision()


def test_opening_a_database_at_the_head_does_not_load_alembic(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'n.db'}"
    Store(url).close()  # creates and migrates: Alembic is loaded for that
    script = ("import sys\n"
              "from notifier.storage import Store\n"
              f"store = Store({url!r})\n"
              "print(store.revision(), 'alembic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [shipped_head(), "False"]


def test_a_database_behind_the_head_is_migrated(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'n.db'}"
    Store(url).close()
    store = Store(url, create=False)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE workers"))
        conn.execute(text("ALTER TABLE outbox DROP COLUMN claimed_by"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0014'"))
    store.close()
    store = Store(url)
    try:
        assert store.revision() == shipped_head()
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM workers")).scalar() == 0
            assert conn.execute(text("SELECT count(claimed_by) FROM outbox")).scalar() == 0
    finally:
        store.close()


def test_a_revision_this_version_does_not_know_names_the_database(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'n.db'}"
    Store(url).close()
    store = Store(url, create=False)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StorageError, match=r"n\.db: cannot migrate the schema: .*9999"):
        Store(url)

