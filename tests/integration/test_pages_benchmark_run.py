"""benchmarks/pages.py keeps working: a small run finishes and reports every page.

Not a timing test; the figures are read from full runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_pages_benchmark_small_run() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pages.py"),
                             "--rules", "50", "--notifications", "500", "--users", "5",
                             "--requests", "2"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"start", "inbox", "inbox, page 2", "why", "rules", "rule editor", "destinations",
            "tokens", "admin"} <= set(figures["pages"])
    assert all(f["p95_ms"] > 0 for f in figures["pages"].values())
