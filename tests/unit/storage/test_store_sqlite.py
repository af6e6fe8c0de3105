"""The Store on SQLite: the shared contract, plus what is particular to SQLite."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from notifier.config import config_from_dict
from notifier.errors import StorageError
from notifier.storage import Store
from notifier.storage.migrate import head_revision

from .store_contract import StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'notifier.db'}"

    @pytest.fixture
    def empty_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'empty.db'}"


def test_default_database_is_created_under_xdg_data_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config = config_from_dict({}, str(tmp_path / "notifier.toml"))
    with Store.from_config(config) as store:
        store.import_users([{"name": "alice"}])
    path = tmp_path / "data" / "notifier" / "notifier.db"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            head_revision(),)
        assert conn.execute("SELECT name FROM users").fetchall() == [("alice",)]


def test_connections_enforce_foreign_keys_and_wait_for_locks(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_without_create_nothing_is_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'n.db'}"
    with Store(url, create=False) as store, pytest.raises(StorageError) as info:
        store.revision()
    assert str(info.value).startswith(url)
    assert not (tmp_path / "missing").exists()


def test_concurrent_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    Store(url).close()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            with Store(url) as store:
                for i in range(40):
                    store.import_users([{"name": f"{prefix}{i}", "groups": ["g"]}])
                    store.store_messages([{"topic": "t", "msg_id": f"{prefix}{i}"}])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Store(url) as store:
        assert len(store.list_users()) == 120
        assert store.count_messages() == 120


def test_in_memory_database_is_shared_between_threads() -> None:
    with Store("sqlite://") as store:
        store.import_users([{"name": "alice"}])
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(store.get_user("alice")))
        thread.start()
        thread.join(10)
        assert seen and seen[0] is not None


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://user:secret@db/notifier", "mysql is not supported"),
    ("not a url", "is not a database URL"),
    ("postgresql+nosuchdriver://u:secret@h/db", "no database driver"),
])
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as info:
        Store(url)
    assert "secret" not in str(info.value)


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot create directory"):
        Store(f"sqlite:///{blocker / 'sub' / 'n.db'}")


def test_the_change_log_numbers_on_after_a_prune_of_everything_seen(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with Store(f"sqlite:///{tmp_path / 'n.db'}", clock=lambda: now[0]) as store:
        for i in range(3):
            store.upsert_rules([{"user": "alice", "name": f"r{i}",
                                 "track": {"kind": "topics", "patterns": ["*"]},
                                 "destinations": ["email"]}])
        seen = store.last_change()
        now[0] += 2 * 86400
        assert store.prune_changes(seen, 86400) == seen - 1  # the newest entry stays
        store.upsert_rules([{"user": "alice", "name": "after",
                             "track": {"kind": "topics", "patterns": ["*"]},
                             "destinations": ["email"]}])
        # A watcher that had seen everything sees the new change.
        assert [row.key2 for row in store.changes_after(seen)] == ["after"]
