"""The API benchmark keeps working: a small run finishes and prints every figure.

Not a timing test; the figures come from full runs of benchmarks/api.py.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_quick_run_previews_every_kind_and_serves_many_clients() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "api.py"), "--quick"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"without the index [\d,]+ msg/s, with it [\d,]+ msg/s", out), out
    for kind in ("artifacts-owned", "artifacts-group-owned", "artifacts-followed",
                 "related-events", "users-followed", "topics"):
        assert re.search(rf"^  {kind} +[\d.]+ +[\d.]+ .* +\d+x$", out, re.M), (kind, out)
        assert f"preview p95, {kind}, 2,000 msgs" in out
    assert re.search(r"GET /users/me +[\d,]+ requests: .* 0 errors", out), out
    assert "results (--quick: targets not enforced)" in out
