"""One notifier serve per SQLite database: the service lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notifier.errors import ServiceError
from notifier.storage.servicelock import ServiceLock


def test_a_second_holder_is_refused_naming_the_first_ones_pid(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    first = ServiceLock(url)
    first.acquire()
    try:
        with pytest.raises(ServiceError) as info:
            ServiceLock(url).acquire()
        text = str(info.value)
        assert f"(process {os.getpid()})" in text
        assert str(tmp_path / "n.db") in text and "one service per SQLite database" in text
    finally:
        first.release()
    again = ServiceLock(url)
    again.acquire()  # free once released
    again.release()


def test_the_lock_lives_beside_the_database(tmp_path: Path) -> None:
    lock = ServiceLock(f"sqlite:///{tmp_path / 'sub' / 'n.db'}")
    lock.acquire()
    try:
        assert lock.path == tmp_path / "sub" / "n.db-serve.lock"
        assert lock.path.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:",
                                 "postgresql+psycopg://u@127.0.0.1/x"])
def test_no_lock_for_memory_or_postgresql(url: str) -> None:
    first, second = ServiceLock(url), ServiceLock(url)
    first.acquire()
    second.acquire()  # several workers on PostgreSQL are that deployment's business
    assert first.path is None
    first.release()
    second.release()
