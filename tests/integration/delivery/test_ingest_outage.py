"""``notifier serve`` on PostgreSQL while the database goes away and comes back: nothing is lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from notifier.storage.outbox import Outbox
from tests.conftest import require_service, wait_for
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
        wait_for(lambda: "cannot record" in world.serve.log(), "serve to say it cannot record",
                 context=world.serve.log)
        # A few attempts fail meanwhile (the log must still say it once).
        wait_for(lambda: world.serve.metric("notifier_ingest_record_failures_total") >= 3,
                 "three failed attempts to record", context=world.serve.log)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA {schema}_away RENAME TO {schema}")
        after = [world.publisher.good(f"after {n}") for n in range(5)]

        everything = set(before + during + after)
        wait_for(lambda: everything <= {m.msg_id for m in world.store.message_rows()},
                 "every message recorded", context=world.serve.log)
        rows = {row.msg_id for row in Outbox(world.store).rows(user="alice")}
        assert everything <= rows
        assert world.serve.metric("notifier_messages_rejected_total") == 0
        log = world.serve.log()
        assert log.count("notifier.delivery.ingest: cannot record") == 1, log
        assert "the database can be used again" in log
    finally:
        world.close()
