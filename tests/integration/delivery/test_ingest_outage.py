"""``notifier serve`` on PostgreSQL while the database goes away and comes back: nothing is lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from notifier.storage.outbox import Outbox
from tests.conftest import require_service
from tests.integration.conftest import PG
from tests.integration.rawbus import HostileWorld

pytestmark = pytest.mark.integration


@pytest.fixture
def schema() -> Iterator[str]:
    require_service("PostgreSQL", 5432)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {name}_away CASCADE")


def test_messages_received_while_the_database_is_away_are_recorded_when_it_is_back(
        tmp_path: Path, schema: str) -> None:
    app = f"notifier-{schema}"
    url = (f"postgresql+psycopg://postgres@127.0.0.1:5432/test"
           f"?options=-csearch_path%3D{schema}&application_name={app}")
    world = HostileWorld(tmp_path, database_url=url)
    try:
        world.rules(["alice"], ["rss"])
        world.start()
        assert world.publisher is not None
        before = [world.publisher.good(f"before {n}") for n in range(10)]
        world.wait_delivered(before)

        with psycopg.connect(PG, autocommit=True) as conn:
            # Every statement of serve now fails, and every connection it had is gone.
            conn.execute(f"ALTER SCHEMA {schema} RENAME TO {schema}_away")
            killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM "
                                  "pg_stat_activity WHERE application_name = %s",
                                  (app,)).fetchone()
        assert killed is not None and killed[0] >= 1
        during = [world.publisher.good(f"during {n}") for n in range(20)]
        deadline = time.monotonic() + 20
        while "cannot record" not in world.serve.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "cannot record" in world.serve.log(), world.serve.log()
        time.sleep(1.0)  # a few attempts fail meanwhile
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA {schema}_away RENAME TO {schema}")
        after = [world.publisher.good(f"after {n}") for n in range(5)]

        everything = set(before + during + after)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = {m.msg_id for m in world.store.message_rows()}
            if everything <= stored:
                break
            time.sleep(0.2)
        assert everything <= stored, (sorted(everything - stored), world.serve.log())
        rows = {row.msg_id for row in Outbox(world.store).rows(user="alice")}
        assert everything <= rows
        assert world.serve.metric("notifier_messages_rejected_total") == 0
        log = world.serve.log()
        assert log.count("notifier.delivery.ingest: cannot record") == 1, log
        assert "the database can be used again" in log
    finally:
        world.close()
