"""The live-stream benchmark keeps working: a small run finishes and loses nothing.

Not a timing test; the figures come from full runs of benchmarks/stream.py.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_quick_run_loses_nothing_and_every_stream_comes_back() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stream.py"), "--quick"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"200 streams: lost, duplicated +0, 0 .* PASS", result.stdout), result.stdout
    assert re.search(r"200 streams: back after a storm +200/200 .* PASS", result.stdout), \
        result.stdout
    assert "baseline (floor): the same service with 1 stream" in result.stdout
