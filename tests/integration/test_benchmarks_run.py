"""The benchmarks keep working: a small run of each must finish and lose nothing.

These are not timing tests; the figures are read from full benchmark runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

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
