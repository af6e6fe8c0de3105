"""``benchmarks/match.py --quick`` keeps working (a small smoke run, in-process)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "match.py"


def test_quick_run_prints_every_measure_and_agrees_with_the_baseline(capsys):
    spec = importlib.util.spec_from_file_location("match_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "2,000 users" in out
    for label in ("index build", "match time per message, median",
                  "match time per message, p99", "baseline (every rule), median",
                  "speed-up over baseline", "peak RSS after build",
                  "one rule change (replace), median", "one ownership change, median"):
        assert label in out, label
    assert re.search(r"baseline and index agree\s+10/10\s+all\s+PASS", out)
    assert re.search(r"match time per message, median\s+[\d.]+ µs\s+<= 50 µs\s+(PASS|FAIL)",
                     out)
