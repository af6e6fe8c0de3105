"""The end-to-end benchmark keeps working: a small run must finish and lose nothing.

Not a timing test: the figures come from full runs of ``benchmarks/e2e.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT, require_service

pytestmark = pytest.mark.integration

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECTIONS = ("floor: smtplib straight to the SMTP server", "service with nothing queued",
            "latency: 100 msg/s", "throughput: rss destination only", "highest sustained rate",
            "load average at start", "latency p50 at 100 msg/s", "latency p99 at 100 msg/s",
            "highest sustained rate (rss only)", "notifications lost")


def quick_run(*extra: str) -> tuple[str, dict[str, Any]]:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "e2e.py"), "--quick",
                             *extra], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


def check(out: str, figures: dict[str, Any]) -> None:
    for section in SECTIONS:
        assert section in out, f"{section!r} missing from:\n{out}"
    assert figures["lost"] == 0
    for phase in ("one_by_one", "latency"):
        lat = figures[phase]
        assert lat["messages"] > 0 and lat["notifications"] >= lat["messages"]
        assert lat["delivered"] == lat["notifications"], lat
        assert (lat["lost"], lat["duplicates"], lat["stray"]) == (0, 0, 0)
        assert 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    throughput = figures["throughput"]
    assert throughput["steps"] and throughput["undelivered"] == 0
    assert throughput["steps"][0]["rate"] == 200
    assert all(step["notifications"] >= step["messages"] > 0 for step in throughput["steps"])
    assert set(figures["targets"]) == {"p50", "p99", "sustained"}
    for target in ("latency p50 at 100 msg/s", "latency p99 at 100 msg/s",
                   "highest sustained rate (rss only)"):
        assert re.search(rf"^  {re.escape(target)} .* (PASS|FAIL)$", out, re.M), target
    assert re.search(r"^  notifications lost +0  0 +PASS$", out, re.M), out


def test_quick_run_on_sqlite() -> None:
    out, figures = quick_run()
    check(out, figures)
    assert figures["database"] == "sqlite" and figures["users"] == 300


def test_quick_run_on_postgresql_leaves_no_schema() -> None:
    require_service("PostgreSQL", 5432)
    import psycopg

    out, figures = quick_run("--database-url", POSTGRES)
    check(out, figures)
    assert figures["database"] == "postgresql+psycopg"
    schema = re.search(r"schema (e2e_bench_\w+)", out)
    assert schema, out
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
        left = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = %s",
                            (schema.group(1),)).fetchall()
    assert left == []
