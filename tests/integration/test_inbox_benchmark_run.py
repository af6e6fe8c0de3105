"""benchmarks/inbox.py keeps working: a small run finishes and reports both parts.

Not a timing test; the figures are read from full runs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_inbox_benchmark_small_run() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "inbox.py"),
                             "--batches", "4", "--batch", "10", "--users", "50",
                             "--messages", "200"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "with inbox" in result.stdout and "added per message" in result.stdout
    assert "explained" in result.stdout
