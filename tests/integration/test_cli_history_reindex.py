"""``notifier history reindex``, and ``rules test`` on messages stored before the index."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifier.cli.main import cli
from notifier.storage import Store, terms
from notifier.storage.history_index import HistoryIndex
from tests.history_mix import OWNERS, history

pytestmark = pytest.mark.integration


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "n.db"}"\n'
        "[meta]\nuse_fedmsg_meta = false\nuse_fedora_messaging = false\n"
        "[[meta.mappings]]\n"
        'topic = "org.example.*"\nagent_path = "agent"\n'
        'usernames_paths = ["agent", "users"]\npackages_paths = ["packages"]\n'
        'groups_paths = ["groups"]\nsummary_path = "text"\n', encoding="utf-8")
    return path


def run(conf: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--config", str(conf)])
    return result.exit_code, result.output


def test_reindex_fills_the_index_and_rules_test_agrees_before_and_after(
        conf: Path, tmp_path: Path) -> None:
    now = time.time()
    envelopes = history(120, now)
    url = f"sqlite:///{tmp_path / 'n.db'}"
    with Store(url) as store:
        store.apply_ownership(OWNERS["packages"])
        store.store_messages(envelopes[:80])  # stored before the index existed
        with store._transaction("mark") as conn:
            terms.set_unindexed_upto(conn, conn.exec_driver_sql(
                "SELECT max(id) FROM messages").scalar())
    (tmp_path / "h.jsonl").write_text("".join(json.dumps(e) + "\n" for e in envelopes[80:]))
    code, out = run(conf, "history", "import", str(tmp_path / "h.jsonl"))
    assert code == 0 and "40 new" in out, out
    (tmp_path / "r.json").write_text(json.dumps({
        "user": "alice", "name": "mine", "track": {"kind": "artifacts-owned"},
        "destinations": ["email"]}))
    code, before = run(conf, "rules", "test", str(tmp_path / "r.json"), "--json")
    matched_before = [line for line in before.splitlines() if line.startswith("{")]
    assert code == 0 and matched_before, before
    assert f"\n{len(matched_before)} of " in before and "since 7d ago matched" in before
    # Some of the matches were among the messages the index did not have yet.
    old = {e["msg_id"] for e in envelopes[:80]}
    assert any(json.loads(line)["msg_id"] in old for line in matched_before)

    code, out = run(conf, "history", "reindex")
    assert code == 0 and out.startswith("80 messages indexed"), out
    with Store(url) as store:
        assert HistoryIndex(store).unindexed() == 0
    code, after = run(conf, "rules", "test", str(tmp_path / "r.json"), "--json")
    assert [line for line in after.splitlines() if line.startswith("{")] == matched_before
    code, out = run(conf, "history", "reindex")
    assert out.startswith("0 messages indexed"), out
    code, out = run(conf, "history", "reindex", "--all")
    assert out.startswith("120 messages indexed"), out
    assert "--all" in CliRunner().invoke(cli, ["history", "reindex", "--help"]).output
