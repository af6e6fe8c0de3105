"""The Store on the local PostgreSQL server: the shared contract, and PostgreSQL specifics.

Tests work in schemas of their own (``search_path`` in the URL), dropped
afterwards, so they never see anyone else's tables. The contract tests share
one migrated schema whose tables are emptied before each test.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from notifier.errors import StorageError
from notifier.storage import Store
from notifier.storage.migrate import head_revision
from tests.conftest import require_service
from tests.unit.storage.store_contract import StoreContract

pytestmark = pytest.mark.integration

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(sql)


def _dropping_schemas() -> Iterator[list[str]]:
    require_service("PostgreSQL", 5432)
    made: list[str] = []
    yield made
    for name in made:
        _admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


#: schemas made by a test, dropped (with everything in them) when it ends
schemas = pytest.fixture(_dropping_schemas)
module_schemas = pytest.fixture(_dropping_schemas, scope="module", name="module_schemas")


def _schema_url(schemas: list[str]) -> str:
    name = f"notifier_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE SCHEMA "{name}"')
    schemas.append(name)
    return f"{SERVER}?options={quote(f'-csearch_path={name}')}"


@pytest.fixture(scope="module")
def shared_url(module_schemas: list[str]) -> str:
    url = _schema_url(module_schemas)
    Store(url).close()
    return url


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_url(self, shared_url: str) -> str:
        schema = shared_url.rpartition("search_path%3D")[2]
        with Store(shared_url, create=False) as store, store.engine.begin() as conn:
            tables = conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = %(s)s "
                "AND tablename <> 'alembic_version'", {"s": schema}).scalars().all()
            for table in tables:  # DELETE: much quicker than TRUNCATE on small tables
                conn.exec_driver_sql(f'DELETE FROM "{schema}"."{table}"')
        return shared_url

    @pytest.fixture
    def empty_url(self, schemas: list[str]) -> str:
        return _schema_url(schemas)


def test_concurrent_first_use_migrates_once(schemas: list[str]) -> None:
    url = _schema_url(schemas)
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Store(url, create=False) as store:
        assert store.revision() == head_revision()


def test_connection_errors_name_the_url_without_password() -> None:
    require_service("PostgreSQL", 5432)
    url = "postgresql+psycopg://nosuchuser:hunter2@127.0.0.1:5432/nosuchdb"
    with pytest.raises(StorageError) as info:
        Store(url)
    message = str(info.value)
    assert message.startswith("postgresql+psycopg://nosuchuser:***@127.0.0.1:5432/nosuchdb")
    assert "hunter2" not in message
    assert "cannot migrate the schema" in message
