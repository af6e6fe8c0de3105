"""A fresh database per test, on SQLite and on the PostgreSQL server here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from notifier.storage import Store
from tests.conftest import require_service

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
        yield s
        s.close()
        return
    require_service("PostgreSQL", 5432)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    s = Store(f"postgresql+psycopg://postgres@127.0.0.1:5432/test"
              f"?options=-csearch_path%3D{schema}")
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
