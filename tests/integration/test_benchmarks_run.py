"""The benchmarks keep working: a small run of each must finish and lose nothing.

These are not timing tests; the figures are read from full benchmark runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_service

pytestmark = pytest.mark.integration


def test_publish_benchmark_small_run() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "publish.py"),
                             "--messages", "2000", "--rounds", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["lost"] == {"notifier": 0, "fedmsg": 0, "raw": 0}
    assert set(figures["median"]) == {"notifier", "fedmsg", "raw"}
    assert "notifier / fedmsg" in result.stdout and "notifier / raw" in result.stdout


def test_scale_benchmark_small_run_leaves_nothing_behind() -> None:
    require_service("PostgreSQL", 5432)
    require_service("RabbitMQ", 5672)
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--quick"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    names = [run["name"] for run in figures["runs"]]
    assert names == ["embedded ZeroMQ + SQLite, 1 process", "RabbitMQ + PostgreSQL, 1 worker",
                     "RabbitMQ + PostgreSQL, 2 workers"]
    for run in figures["runs"]:
        assert run["messages"] == 600 and run["notifications"] >= 600
        assert 0 < run["delivery_rate"] <= run["outbox_rate"] * 1.001
        # Feeds are stored by the ingest: the sender process (mail, digests) may stay idle.
        assert run["cpu_ms"]["worker main"] > 0 and run["cpu_ms"]["worker sender"] >= 0
    for run in figures["runs"][1:]:
        # Found and measured (a small run may stay within one clock tick of the broker's CPU).
        assert {"rabbitmq", "postgresql backends", "postgresql background"} <= set(run["cpu_ms"])
        assert run["cpu_ms"]["rabbitmq"] >= 0 and run["cpu_ms"]["postgresql backends"] > 0
    assert set(figures["model"]["at"]) == {"8", "32"}
    parts = ("the workers (ingest and delivery)", "the broker", "PostgreSQL writes")
    assert all(at["saturates"] in parts for at in figures["model"]["at"].values())
    assert set(figures["targets"]) == {"ratio", "outbox"}
    for line in ("2 workers / 1 worker (into the outbox)", "into the outbox, 2 workers"):
        assert re.search(rf"^  {re.escape(line)} .* (PASS|FAIL)$", result.stdout, re.M), line
    # Its PostgreSQL schemas and RabbitMQ queues are gone.
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    queues = subprocess.run(["rabbitmqctl", "-q", "list_queues", "--no-table-headers", "name"],
                            capture_output=True, text=True, timeout=60, check=True).stdout.split()
    for run in figures["runs"][1:]:
        assert run["schema"] not in schemas
        assert run["queue"] not in queues and f"{run['queue']}.dead" not in queues
