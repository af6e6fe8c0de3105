"""``notifier rules`` and ``notifier match`` against a real SQLite database.

Most commands run in-process with click's runner (the database, the
describer and the matcher are all real); one round goes through the
installed console script.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.cli.main import cli
from tests.conftest import run
from tests.integration.clirun import notifier

pytestmark = pytest.mark.integration

ALICE = {"user": "alice", "name": "My packages", "disabled": False,
         "track": {"kind": "artifacts-owned"},
         "filters": {"applications": [], "excluded_applications": [],
                     "severities": ["info", "warning", "error"], "my_actions": False,
                     "topic": None},
         "destinations": ["email", "irc", "rss", "desktop"]}
RULES = [
    ALICE,
    {"user": "bob", "name": "Kernel", "track": {"kind": "artifacts-followed",
                                                "packages": ["kernel"]},
     "destinations": ["rss"]},
    {"user": "bob", "name": "CI", "track": {"kind": "topics", "patterns": ["org.example.*.ci.*"]},
     "filters": {"severities": ["warning", "error"]}, "destinations": ["desktop"]},
    {"user": "zoë", "name": "Python team", "track": {"kind": "artifacts-group-owned",
                                                     "groups": ["python-sig"]},
     "destinations": ["email"]},
]
OWNERS = {"packages": {"kernel": {"users": ["alice"]},
                       "python3": {"users": ["carol"], "groups": ["python-sig"]}}}


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "n.db"}"\n'
        "[meta]\nuse_fedmsg_meta = false\nuse_fedora_messaging = false\n"
        "[[meta.mappings]]\n"
        'topic = "org.example.*.ci.build.*"\n'
        'app = "ci"\n'
        'summary_path = "text"\n'
        'agent_path = "by"\n'
        'packages_paths = ["package"]\n'
        'severity = "warning"\n', encoding="utf-8")
    return path


def write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.fixture
def loaded(conf: Path, tmp_path: Path) -> Path:
    out = notifier(conf, "rules", "import", write(tmp_path / "rules.json", RULES))
    assert out.returncode == 0, out.stderr
    assert "4 rules, 4 added or changed" in out.stdout
    out = notifier(conf, "owners", "import", write(tmp_path / "owners.json", OWNERS))
    assert out.returncode == 0, out.stderr
    return conf


def described(**over: Any) -> dict[str, Any]:
    record = {"msg_id": "m1", "topic": "org.fedoraproject.prod.bodhi.update.comment",
              "app": "bodhi", "summary": "s", "link": None, "icon": None, "usernames": [],
              "agent": "dave", "packages": [], "groups": [], "severity": "info"}
    record.update(over)
    return record


def lines(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_import_list_show_export_round_trip(loaded: Path, tmp_path: Path):
    listed = notifier(loaded, "rules", "list").stdout.splitlines()
    assert listed == [
        "alice\tMy packages\tartifacts-owned\tdesktop,email,irc,rss",
        "bob\tCI\ttopics (org.example.*.ci.*)\tdesktop",
        "bob\tKernel\tartifacts-followed (kernel)\trss",
        "zoë\tPython team\tartifacts-group-owned (python-sig)\temail",
    ]
    assert [r["name"] for r in notifier(loaded, "rules", "list", "--user", "bob",
                                        "--json").json_lines()] == ["CI", "Kernel"]
    shown = json.loads(notifier(loaded, "rules", "show", "bob", "Kernel").stdout)
    assert shown["filters"]["severities"] == ["info", "warning", "error"]
    assert shown["track"] == {"kind": "artifacts-followed", "packages": ["kernel"]}

    exported = notifier(loaded, "rules", "export").stdout
    assert len(json.loads(exported)) == 4
    again = notifier(loaded, "rules", "import", write(tmp_path / "again.json", exported))
    assert again.returncode == 0 and "4 rules, 0 added or changed" in again.stdout
    out = notifier(loaded, "rules", "export", "--user", "alice", "-o", str(tmp_path / "a.json"))
    assert out.returncode == 0
    assert [r["name"] for r in json.loads((tmp_path / "a.json").read_text())] == ["My packages"]


def test_import_warns_about_destinations_with_no_backend(conf: Path, tmp_path: Path):
    out = notifier(conf, "rules", "import", write(tmp_path / "rules.json", RULES))
    assert out.returncode == 0
    assert "4 rules, 4 added or changed" in out.stdout  # the import went through
    assert out.stderr == (
        f"warning: {tmp_path / 'rules.json'}: destination 'irc' has no backend configured: "
        f"'[irc] host' is not set in {conf}; nothing reaches irc until it is. "
        "Used by: alice 'My packages'\n")
    # desktop (the live stream), email (a Maildir) and rss need nothing
    others = [{**rule, "destinations": ["email", "rss", "desktop"]} for rule in RULES]
    out = notifier(conf, "rules", "import", write(tmp_path / "others.json", others))
    assert out.returncode == 0 and out.stderr == ""
    many = [{**ALICE, "name": f"r{i}"} for i in range(7)]
    out = notifier(conf, "rules", "import", "--dry-run", write(tmp_path / "many.json", many))
    assert "Used by: alice 'r0', alice 'r1', alice 'r2', alice 'r3', alice 'r4' and 2 more" \
        in out.stderr
    out = notifier(conf, "rules", "add", "bob", "Chat", "--track", "related-events",
                   "--destination", "irc")
    assert out.returncode == 0
    assert "destination 'irc' has no backend configured" in out.stderr

    with_irc = tmp_path / "irc.toml"
    with_irc.write_text(conf.read_text(encoding="utf-8") + '[irc]\nhost = "irc.example.org"\n',
                        encoding="utf-8")
    out = notifier(with_irc, "rules", "import", write(tmp_path / "rules.json", RULES))
    assert out.returncode == 0 and out.stderr == ""


def test_import_with_bad_rules_stores_none_and_names_all(conf: Path, tmp_path: Path):
    bad = [ALICE,
           {**ALICE, "name": "Second", "destinations": ["emial"]},
           {"user": "bob", "name": "Oops", "track": {"kind": "topic", "patterns": ["x"]},
            "destinations": ["rss"], "filters": {"severity": ["error"]}}]
    out = notifier(conf, "rules", "import", write(tmp_path / "bad.json", bad))
    assert out.returncode == 1
    err = out.stderr
    assert "bad.json: 2 of 3 rules are invalid" in err
    assert ("bad.json: rule 1 ('Second'): destinations[0]: unknown destination 'emial' "
            "(did you mean 'email'?)") in err
    assert "bad.json: rule 2 ('Oops'): track.kind: unknown kind 'topic' (did you mean " \
           "'topics'?)" in err
    assert "bad.json: rule 2 ('Oops'): filters.severity: unknown field (did you mean " \
           "'severities'?)" in err
    assert "nothing was imported" in err
    assert notifier(conf, "rules", "list").stdout == ""
    out = notifier(conf, "rules", "import", write(tmp_path / "broken.json", "[{"))
    assert out.returncode == 1 and "broken.json:1:3: not valid JSON" in out.stderr


def test_add_remove_disable_enable(conf: Path):
    out = notifier(conf, "rules", "add", "alice", "Mine", "--track", "artifacts-owned",
                   "--destination", "email", "--severity", "error", "--app", "Bodhi")
    assert out.returncode == 0, out.stderr
    shown = json.loads(notifier(conf, "rules", "show", "alice", "Mine").stdout)
    assert shown["filters"]["severities"] == ["error"]
    assert shown["filters"]["applications"] == ["bodhi"]
    out = notifier(conf, "rules", "add", "alice", "Mine", "--track", "related-events",
                   "--destination", "irc")
    assert out.returncode == 1 and "already has a rule named 'Mine'" in out.stderr
    out = notifier(conf, "rules", "add", "alice", "Mine", "--track", "related-events",
                   "--destination", "irc", "--replace")
    assert out.returncode == 0
    out = notifier(conf, "rules", "add", "alice", "F", "--track", "artifacts-followed",
                   "--destination", "emial")
    assert out.returncode == 1
    assert "command line: rule ('F'): track.packages: missing" in out.stderr
    assert "unknown destination 'emial' (did you mean 'email'?)" in out.stderr
    out = notifier(conf, "rules", "add", "alice", "E", "--track", "related-events",
                   "--target", "x", "--destination", "irc")
    assert out.returncode == 2 and "takes no targets" in out.stderr

    assert notifier(conf, "rules", "disable", "alice", "Mine").returncode == 0
    assert notifier(conf, "rules", "list").stdout.endswith("\t(disabled)\n")
    assert notifier(conf, "rules", "enable", "alice", "Mine").returncode == 0
    assert "(disabled)" not in notifier(conf, "rules", "list").stdout
    out = notifier(conf, "rules", "remove", "alice", "Mien")
    assert out.returncode == 1 and "no rule named 'Mien' (did you mean 'Mine'?)" in out.stderr
    assert notifier(conf, "rules", "remove", "alice", "Mine").returncode == 0
    assert notifier(conf, "rules", "list").stdout == ""


def test_match_described_with_explanations(loaded: Path):
    records = [
        described(msg_id="a", packages=["kernel", "python3"], agent="dave"),
        described(msg_id="b", packages=["kernel"], agent="alice"),   # alice's own action
        described(msg_id="c", topic="org.example.prod.ci.build.done", severity="info"),
    ]
    out = notifier(loaded, "match", "--described", "--explain", input=lines(*records))
    assert out.returncode == 0, out.stderr
    assert out.json_lines() == [
        {"msg_id": "a", "recipients": [
            {"user": "alice", "rules": ["My packages"],
             "destinations": ["desktop", "email", "irc", "rss"],
             "why": {"My packages": "package 'kernel' is owned by alice"}},
            {"user": "bob", "rules": ["Kernel"], "destinations": ["rss"],
             "why": {"Kernel": "package 'kernel' is followed"}},
            {"user": "zoë", "rules": ["Python team"], "destinations": ["email"],
             "why": {"Python team": "package 'python3' is owned by group 'python-sig'"}}]},
        {"msg_id": "b", "recipients": [
            {"user": "bob", "rules": ["Kernel"], "destinations": ["rss"],
             "why": {"Kernel": "package 'kernel' is followed"}}]},
        {"msg_id": "c", "recipients": []},
    ]
    assert notifier(loaded, "rules", "disable", "bob", "Kernel").returncode == 0
    out = notifier(loaded, "match", "--described", input=lines(records[1]))
    assert out.json_lines() == [{"msg_id": "b", "recipients": []}]


def test_match_leaves_out_a_stored_rule_that_no_longer_validates(loaded: Path):
    from notifier.config import load_config
    from notifier.storage import Store

    with Store.from_config(load_config(str(loaded))) as store:  # past validation
        store.upsert_rules([{"user": "carol", "name": "Paged", "destinations": ["pager"],
                             "track": {"kind": "artifacts-followed", "packages": ["kernel"]}}])
    out = notifier(loaded, "match", "--described", input=lines(described(
        msg_id="b", packages=["kernel"], agent="alice")))
    assert out.returncode == 0, out.stderr
    assert out.json_lines() == [{"msg_id": "b", "recipients": [
        {"user": "bob", "rules": ["Kernel"], "destinations": ["rss"]}]}]
    assert "warning: a stored rule is left out: database, user 'carol': rule ('Paged'): " \
           "destinations[0]: unknown destination 'pager'" in out.stderr


def test_match_raw_messages_through_the_describer(loaded: Path):
    envelope = {"topic": "org.example.prod.ci.build.failed", "msg_id": "2024-x",
                "timestamp": 1700000000, "i": 1, "username": "ci",
                "msg": {"text": "build failed", "by": "dave", "package": "kernel"}}
    record_line = {"topic": "org.example.prod.ci.build.failed", "id": "fm-1",
                   "headers": {}, "body": {"text": "failed", "by": "alice",
                                           "package": "kernel"}, "queue": "q"}
    bare = {"topic": "org.example.prod.wiki.edit", "msg": {"log": "edited"}}
    out = notifier(loaded, "match", "--explain", input=lines(envelope, record_line, bare))
    assert out.returncode == 0, out.stderr
    first, second, third = out.json_lines()
    assert first["msg_id"] == "2024-x"
    assert [(r["user"], r["rules"]) for r in first["recipients"]] == [
        ("alice", ["My packages"]), ("bob", ["CI", "Kernel"])]
    assert first["recipients"][1]["destinations"] == ["desktop", "rss"]
    assert first["recipients"][1]["why"]["CI"] == "topic matches 'org.example.*.ci.*'"
    # alice did it herself: her own rule stays quiet.
    assert second["msg_id"] == "fm-1"
    assert [r["user"] for r in second["recipients"]] == ["bob"]
    assert third == {"msg_id": third["msg_id"], "recipients": []}
    assert third["msg_id"].startswith("sha256:")


def test_match_reports_bad_lines_and_goes_on(loaded: Path, tmp_path: Path):
    path = write(tmp_path / "in.jsonl",
                 "not json\n\n" + lines({"topic": 3}, described(msg_id="ok", agent=7),
                                        described(msg_id="fine")))
    out = notifier(loaded, "match", "--described", path)
    assert out.returncode == 1
    assert [r["msg_id"] for r in out.json_lines()] == ["fine"]
    assert f"{path} line 1: invalid JSON" in out.stderr
    assert f"{path} line 3: 'topic' must be a string" in out.stderr
    assert f"{path} line 4: 'agent' must be a string or null" in out.stderr
    assert "3 lines of" in out.stderr


def test_rules_test_lists_what_the_rule_would_have_matched(loaded: Path, tmp_path: Path):
    now = time.time()

    def envelope(i: int, age: float, package: str, topic: str = "org.example.prod.ci.build.x"):
        return {"topic": topic, "msg_id": f"h{i}", "timestamp": now - age,
                "msg": {"text": f"message {i}", "by": "dave", "package": package}}

    history = [envelope(1, 3600, "kernel"), envelope(2, 7200, "python3"),
               envelope(3, 30 * 86400, "kernel"),
               envelope(4, 60, "kernel", topic="org.example.prod.other")]
    out = notifier(loaded, "history", "import", write(tmp_path / "h.jsonl", lines(*history)))
    assert out.returncode == 0, out.stderr

    rule = {"user": "erin", "name": "Try", "track": {"kind": "artifacts-followed",
                                                     "packages": ["kernel"]},
            "destinations": ["email"], "filters": {"severities": ["warning"]}}
    out = notifier(loaded, "rules", "test", write(tmp_path / "r.json", rule), "--since", "7d")
    assert out.returncode == 0, out.stderr
    got = out.stdout.splitlines()
    assert len(got) == 1
    assert got[0].endswith("  org.example.prod.ci.build.x  message 1")
    assert "1 of 3 messages since 7d ago matched" in out.stderr

    out = notifier(loaded, "rules", "test", str(tmp_path / "r.json"), "--since", "60d",
                   "--json")
    assert [r["msg_id"] for r in out.json_lines()] == ["h3", "h1"]
    assert out.json_lines()[0]["packages"] == ["kernel"]

    rule["disabled"] = True
    rule["track"] = {"kind": "artifacts-owned", "users": ["carol"]}
    out = notifier(loaded, "rules", "test", write(tmp_path / "r2.json", [rule]))
    assert "testing it as if it were enabled" in out.stderr
    assert [line.split("  ")[-1] for line in out.stdout.splitlines()] == ["message 2"]

    rule["destinations"] = ["pager"]
    out = notifier(loaded, "rules", "test", write(tmp_path / "r3.json", rule))
    assert out.returncode == 1 and "r3.json: rule ('Try'): destinations[0]" in out.stderr
    out = notifier(loaded, "rules", "test", str(tmp_path / "r.json"), "--since", "soon")
    assert out.returncode == 2 and "--since" in out.stderr


def test_help_texts_and_config_on_every_command(conf: Path):
    text = CliRunner().invoke(cli, ["rules", "import", "--help"]).output
    assert "All or nothing" in text and "fnmatch.fnmatchcase" in text
    assert "artifacts-group-owned" in CliRunner().invoke(cli, ["rules", "--help"]).output
    for sub in ("add", "list", "show", "remove", "import", "export", "test", "enable",
                "disable"):
        assert "--config PATH" in CliRunner().invoke(cli, ["rules", sub, "--help"]).output, sub
    text = CliRunner().invoke(cli, ["match", "--help"]).output
    assert "--described" in text and "--explain" in text and "--config PATH" in text


def test_console_script(loaded: Path):
    result = run("notifier", "match", "--described", "--config", str(loaded),
                 input=lines(described(msg_id="p", packages=["kernel"])))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"msg_id": "p", "recipients": [
        {"user": "alice", "rules": ["My packages"],
         "destinations": ["desktop", "email", "irc", "rss"]},
        {"user": "bob", "rules": ["Kernel"], "destinations": ["rss"]}]}
    assert result.stderr == ""


def test_console_script_starts_from_the_rules_snapshot_with_later_changes(loaded: Path,
                                                                         tmp_path: Path):
    record = lines(described(msg_id="p", packages=["kernel"]))
    first = run("notifier", "match", "--described", "--verbose", "--config", str(loaded),
                input=record)
    assert first.returncode == 0, first.stderr
    assert "no rules snapshot yet" in first.stderr and "wrote the rules snapshot" in first.stderr
    # A rule added after the snapshot: the next start applies it from the change log.
    follow = {"user": "dan", "name": "Kernel too", "track": {"kind": "artifacts-followed",
                                                            "packages": ["kernel"]},
              "destinations": ["email"]}
    out = notifier(loaded, "rules", "import", write(tmp_path / "more.json", [follow]))
    assert out.returncode == 0, out.stderr
    second = run("notifier", "match", "--described", "--verbose", "--config", str(loaded),
                 input=record)
    assert second.returncode == 0, second.stderr
    assert "from the snapshot" in second.stderr and "then 1 later change(s)" in second.stderr
    full = run("notifier", "match", "--described", "--config", str(loaded), input=record,
               env={**os.environ, "NOTIFIER_RULES_SNAPSHOT": "off"})
    assert full.returncode == 0, full.stderr
    assert second.stdout == full.stdout
    assert [r["user"] for r in json.loads(second.stdout)["recipients"]] == ["alice", "bob", "dan"]
