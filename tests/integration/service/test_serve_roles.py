"""``notifier serve --role``, and which parts a worker runs on a shared database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifier.config import config_from_dict
from notifier.errors import ConfigError
from notifier.service.app import Service
from notifier.service.healthport import HealthServer
from notifier.service.leader import Leader
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.conftest import free_port, run
from tests.integration.outbox_rows import envelope, note
from tests.integration.serveproc import write_toml

pytestmark = pytest.mark.integration


def settings(url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"database_url": url,
            "bus": {"embedded_relay": False, "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
            "http": {"listen": f"127.0.0.1:{free_port()}"},
            "email": {"maildir": str(tmp_path / "Maildir")}, **extra}


def test_a_role_other_than_all_on_sqlite_is_refused_naming_the_flag_and_the_key(
        tmp_path: Path) -> None:
    config = write_toml(tmp_path / "n.toml", settings(f"sqlite:///{tmp_path / 'n.db'}",
                                                       tmp_path))
    result = run("notifier", "serve", "--role", "deliver", "--config", str(config), timeout=60)
    assert result.returncode == 1
    assert "--role deliver" in result.stderr and "database_url on PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("notifier", "serve", "--role", "mail", "--config", str(config))
    assert result.returncode == 2
    assert "'mail' is not one of 'ingest', 'deliver', 'http', 'all'" in result.stderr
    help_text = run("notifier", "serve", "--help").stdout
    assert "--role [ingest|deliver|http|all]" in help_text


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_on_a_shared_database_the_irc_connection_runs_in_one_worker(
        store: Store, tmp_path: Path) -> None:
    config = config_from_dict(settings(store.url, tmp_path, irc={
        "host": "127.0.0.1", "port": free_port(), "nick": "notifier"}))
    service = Service(config)
    try:
        worker = service.supervisor.part("worker-irc")
        assert isinstance(worker, Leader)
        assert isinstance(service.supervisor.part("digests"), Leader)
        assert isinstance(service.supervisor.part("housekeeping"), Leader)
        assert not isinstance(service.supervisor.part("worker-email"), Leader)
        # Until it holds the lock, nothing of IRC is claimed for this worker, and its
        # connection is not opened (the port above has no server: opening would fail).
        service.dispatcher.setup()
        assert "irc" not in service.dispatcher.room() and "email" in service.dispatcher.room()
        worker.on_lead(True)
        assert "irc" in service.dispatcher.room()
        # Rows claimed for it when it stops leading are given back, due for the next holder.
        outbox = Outbox(store)
        _m, _n, claimed = outbox.record_and_claim(
            [envelope("m1")], [(note("alice", "m1", "irc"), "pending")], claim={"irc"})
        service.dispatcher.queues["irc"].put(claimed)
        worker.on_lead(False)
        assert "irc" not in service.dispatcher.room()
        assert [r.claimed_until for r in outbox.rows()] == [None]
    finally:
        service.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_each_role_runs_its_own_parts(store: Store, tmp_path: Path) -> None:
    config = config_from_dict(settings(store.url, tmp_path))
    parts = {}
    for role in ("ingest", "deliver", "http", "all"):
        service = Service(config, role=role)
        try:
            parts[role] = set(service.supervisor.names)
            assert isinstance(service.web, HealthServer) == (role in ("ingest", "deliver"))
        finally:
            service.close()
    common = {"heartbeat", "changes", "housekeeping", "http"}
    assert parts["ingest"] == common | {"ingest"}
    assert parts["deliver"] == common | {"digests", "sent-log", "worker-email", "sender"}
    assert parts["http"] == common
    assert parts["all"] == parts["ingest"] | parts["deliver"]
    with pytest.raises(ConfigError, match="--role 'mail': must be one of ingest, deliver"):
        Service(config, role="mail")
