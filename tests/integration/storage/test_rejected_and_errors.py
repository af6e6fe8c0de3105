"""The store of rejected messages, and which database errors say "try again later"."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from notifier.errors import StorageError, StorageUnavailableError
from notifier.storage import Store
from notifier.storage.rejected import PAYLOAD_LIMIT, RejectedMessage, RejectedStore
from notifier.storage.schema import users
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def rejected(n: int, **kw: Any) -> RejectedMessage:
    return RejectedMessage.make(1000.0 + n, kw.pop("reason", "json"), f"detail {n}", **kw)


def transactions(store: Store) -> list[int]:
    begun: list[int] = []
    event.listen(store.engine, "begin", lambda conn: begun.append(1))
    return begun


def test_rejected_messages_are_kept_newest_first_bounded(store: Store) -> None:
    kept = RejectedStore(store, keep=5)
    begun = transactions(store)
    assert kept.add([rejected(n) for n in range(4)]) == 4
    assert kept.add([rejected(n) for n in range(4, 12)]) == 5  # more than keep in one go
    assert len(begun) == 2  # one transaction a batch, trimming included
    rows = kept.list()
    assert [r.detail for r in rows] == [f"detail {n}" for n in range(7, 12)]
    assert kept.count() == 5
    assert [r.detail for r in kept.list(limit=2)] == ["detail 10", "detail 11"]
    assert [r.detail for r in kept.list(since=1010.0)] == ["detail 10", "detail 11"]
    kept.add([rejected(20, reason="depth")])
    assert [r.detail for r in kept.list(reason="depth")] == ["detail 20"]
    assert kept.count() == 5


def test_what_is_kept_is_cleaned_and_cut(store: Store) -> None:
    kept = RejectedStore(store)
    payload = b"\x00\xff" + b"x" * (PAYLOAD_LIMIT * 2)
    kept.add([RejectedMessage.make(time.time(), "text", "a\x00b \ud800 c" + "d" * 5000,
                                   msg_id="id\x00\udfff", topic=b"t\x00\xff\xfe" * 1000,
                                   payload=payload)])
    (row,) = kept.list()
    assert row.detail.startswith("a\\x00b \\ud800 c") and len(row.detail) <= 2000 + 20
    assert row.msg_id == "id\\x00\\udfff"
    assert row.topic is not None and row.topic.startswith("t\\x00\\xff\\xfe")
    assert row.payload == payload[:PAYLOAD_LIMIT] and row.size == len(payload)
    shown = row.to_dict()
    assert shown["truncated"] is True and shown["payload"].startswith("\x00\\xffxxx")


def test_nothing_is_kept_with_keep_zero(store: Store) -> None:
    kept = RejectedStore(store, keep=0)
    assert kept.add([rejected(1)]) == 0 and kept.count() == 0
    # The same message, with room to keep it, is kept: the zeros above are the setting's.
    assert RejectedStore(store, keep=10).add([rejected(1)]) == 1


def test_refused_data_is_a_plain_storage_error(store: Store) -> None:
    row = {"name": "alice", "emails": [], "ircnicks": [], "groups": [], "feed_token": "t",
           "created_at": 0, "updated_at": 0}
    with store._transaction("add a user") as conn:
        conn.execute(insert(users).values(**row))
    with pytest.raises(StorageError) as info:
        with store._transaction("add a user") as conn:
            conn.execute(insert(users).values(**row))
    assert not isinstance(info.value, StorageUnavailableError)
    with pytest.raises(StorageError) as info:
        with store._transaction("add a user") as conn:
            conn.execute(insert(users).values(**{**row, "name": "bob \ud800", "feed_token": "u"}))
    assert not isinstance(info.value, StorageUnavailableError)


def test_a_missing_table_is_unavailable(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE rejected_messages"))
    with pytest.raises(StorageUnavailableError, match="notifier db upgrade"):
        RejectedStore(store).add([rejected(1)])


def test_a_read_only_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.engine.dispose()
    event.listen(store.engine, "connect",
                 lambda dbapi, _record: dbapi.execute("PRAGMA query_only = ON"))
    try:
        with pytest.raises(StorageUnavailableError, match="readonly"):
            RejectedStore(store).add([rejected(1)])
        assert RejectedStore(store).list() == []  # reading still works
    finally:
        store.close()


def test_an_unreachable_postgresql_is_unavailable() -> None:
    port = free_port()
    with pytest.raises(StorageUnavailableError, match=f":{port}"):
        Store(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2")
