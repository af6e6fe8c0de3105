"""``notifier history rejected``: what serve rejected, with why, as text or JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from notifier.storage import Store
from notifier.storage.rejected import RejectedMessage, RejectedStore
from tests.conftest import run

pytestmark = pytest.mark.integration


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "n.db"}"\n')
    now = time.time()
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as store:
        RejectedStore(store).add([
            RejectedMessage.make(now - 7200, "json", "not JSON: Expecting value: line 1 "
                                 "column 1 (char 0)", topic=b"org.x", payload=b"{nope"),
            RejectedMessage.make(now - 60, "depth", "nested deeper than 64 levels",
                                 topic=b"org.y", payload=b"[" * 20000),
            RejectedMessage.make(now - 30, "field", "'i' must be an integer, not str 'x'",
                                 msg_id="2026-abc", topic="org.z", payload=b'{"i": "x"}'),
        ])
    return path


def test_lists_oldest_first_with_reasons(conf: Path) -> None:
    result = run("notifier", "history", "rejected", "--config", str(conf))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["json", "depth", "field"]
    assert lines[2].endswith("field 2026-abc org.z: 'i' must be an integer, not str 'x'")
    assert " json - org.x: not JSON" in lines[0]


def test_since_reason_limit_and_json(conf: Path) -> None:
    recent = run("notifier", "history", "rejected", "--since", "1h", "--config", str(conf))
    assert [line.split()[2] for line in recent.stdout.splitlines()] == ["depth", "field"]
    one = run("notifier", "history", "rejected", "--reason", "depth", "--json",
              "--config", str(conf))
    (row,) = [json.loads(line) for line in one.stdout.splitlines()]
    assert row["reason"] == "depth" and row["topic"] == "org.y"
    assert row["size"] == 20000 and row["truncated"] is True
    assert row["payload"] == "[" * 16384
    newest = run("notifier", "history", "rejected", "--limit", "1", "--json",
                 "--config", str(conf))
    assert json.loads(newest.stdout)["msg_id"] == "2026-abc"


def test_an_unknown_reason_names_the_known_ones(conf: Path) -> None:
    result = run("notifier", "history", "rejected", "--reason", "dept", "--config", str(conf))
    assert result.returncode == 2
    assert "'dept' is not a reason (did you mean 'depth'?); reasons: frames," in result.stderr


def test_help_explains_every_reason() -> None:
    from notifier.bus.checks import REASONS

    result = run("notifier", "history", "rejected", "--help")
    assert result.returncode == 0
    for reason, meaning in REASONS.items():
        assert f"{reason} " in result.stdout and meaning.split()[0] in result.stdout
    assert "--since DURATION" in result.stdout and "keep_rejected" in result.stdout
