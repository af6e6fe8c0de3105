"""``notifier db|users|owners|history``, run as the installed console script.

Each test has its own SQLite database under tmp_path. A few checks that need
no process of their own (help texts) run in-process with click's runner.
"""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifier.cli.main import cli
from notifier.storage.migrate import head_revision
from tests.conftest import BIN, run
from tests.integration.clirun import notifier, notifier_process

pytestmark = pytest.mark.integration


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "n.db"}"\n'
                    '[history]\nretention = "1h"\n')
    return path


def write_json(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_db_upgrade_and_current(conf: Path, tmp_path: Path) -> None:
    before = notifier_process(conf, "db", "current")
    assert before.returncode == 1
    assert "no database yet" in before.stderr
    assert not (tmp_path / "n.db").exists()
    up = notifier_process(conf, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"schema at revision {head_revision()} (newest)" in up.stdout
    now = notifier(conf, "db", "current")
    assert now.returncode == 0, now.stderr
    assert f"sqlite:///{tmp_path / 'n.db'}: schema at revision {head_revision()}" in now.stdout


def test_default_database_lives_in_xdg_data_home(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFIER_CONFIG"}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    result = run("notifier", "users", "add", "alice", "--email", "a@example.org", env=env)
    assert result.returncode == 0, result.stderr
    database = tmp_path / "data" / "notifier" / "notifier.db"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT name, emails FROM users").fetchall() == [
            ("alice", '["a@example.org"]')]


def test_users_add_list_show_remove(conf: Path) -> None:
    added = notifier(conf, "users", "add", "alice", "--email", "a@example.org",
                     "--email", "alice@example.com", "--ircnick", "al", "--group", "packager")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "added user alice\n"
    assert notifier(conf, "users", "add", "bob").returncode == 0
    again = notifier(conf, "users", "add", "alice")
    assert again.returncode == 1
    assert "user 'alice' already exists" in again.stderr

    assert notifier(conf, "users", "list").stdout == "alice\nbob\n"
    lines = notifier(conf, "users", "list", "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["name"] for r in records] == ["alice", "bob"]

    shown = json.loads(notifier(conf, "users", "show", "alice", "--json").stdout)
    token = shown.pop("feed_token")
    assert len(token) >= 43
    assert shown.pop("feed_url") == f"http://127.0.0.1:8080/feeds/alice.atom?token={token}"
    assert shown == {"name": "alice", "emails": ["a@example.org", "alice@example.com"],
                     "ircnicks": ["al"], "groups": ["packager"], "delivery": None,
                     "source": "local"}
    human = notifier(conf, "users", "show", "alice").stdout
    assert "emails:     a@example.org, alice@example.com\n" in human
    assert f"feed_token: {token}\n" in human

    unknown = notifier(conf, "users", "show", "alcie")
    assert unknown.returncode == 1
    assert "no user 'alcie' (did you mean 'alice'?)" in unknown.stderr

    assert notifier(conf, "users", "remove", "bob").stdout == "removed user bob\n"
    gone = notifier(conf, "users", "remove", "bob")
    assert gone.returncode == 1
    assert "no local user 'bob'" in gone.stderr
    assert notifier(conf, "users", "list").stdout == "alice\n"


def test_users_import_is_all_or_nothing(conf: Path, tmp_path: Path) -> None:
    bad = write_json(tmp_path / "bad.json", [
        {"name": "alice", "emails": ["a@example.org"]},
        {"name": "bob", "ircnick": ["bobby"]},
    ])
    result = notifier_process(conf, "users", "import", bad)
    assert result.returncode == 1
    assert (f"{bad}: record 1 ('bob'): unknown key 'ircnick' (did you mean 'ircnicks'?)"
            in result.stderr)
    assert notifier(conf, "users", "list").stdout == ""


def test_users_import_checks_delivery_settings(conf: Path, tmp_path: Path) -> None:
    good = {"email": {"address": "a@example.org", "digest": {"every": "daily@08:00"}},
            "irc": {"nick": "al", "digest": {"every": "15m", "max_items": 20}},
            "rss": None, "desktop": {"digest": None}}
    bad = write_json(tmp_path / "bad.json", [
        {"name": "alice", "delivery": good},
        {"name": "bob", "delivery": {"email": "b@example.org"}},
        {"name": "carol", "delivery": {"email": {"digest": {"every": "1 hour"}},
                                       "irc": {"digest": {"every": "daily@25:00",
                                                          "max_items": 0}}}},
        {"name": "dave", "emails": ["dave"], "delivery": {"emial": {"adress": "x"}},
         "ircnicks": ["dave", "#dave"]},
        {"name": "erin", "delivery": {"email": {"digest": {"evry": "1h"}}}},
    ])
    result = notifier_process(conf, "users", "import", bad)
    assert result.returncode == 1
    for expected in [
        f"{bad}: 4 of 5 records are invalid:",
        f"{bad}: record 1 ('bob'): delivery.email: must be an object or null, not string "
        "'b@example.org'; for example {\"address\": \"b@example.org\"}",
        f"{bad}: record 2 ('carol'): delivery.email.digest.every: '1 hour' is not a duration "
        "like 30s, 15m, 1h or 2d, nor a time of day like daily@08:00 (did you mean '1h'?)",
        f"{bad}: record 2 ('carol'): delivery.irc.digest.every: 'daily@25:00': the time of "
        "day must be HH:MM, from 00:00 to 23:59",
        f"{bad}: record 2 ('carol'): delivery.irc.digest.max_items: must be a whole number "
        "from 1 to 1000, not 0",
        f"{bad}: record 3 ('dave'): emails[0]: 'dave' is not an email address: it has no '@'",
        f"{bad}: record 3 ('dave'): ircnicks[1]: '#dave' is not an IRC nick",
        f"{bad}: record 3 ('dave'): delivery: unknown key 'emial' (did you mean "
        "'email'?); known: email, irc, rss, desktop, webpush, matrix, quiet_hours",
        f"{bad}: record 4 ('erin'): delivery.email.digest: unknown key 'evry' (did you mean "
        "'every'?); known: every, max_items",
    ]:
        assert expected in result.stderr
    assert "('alice')" not in result.stderr
    assert notifier(conf, "users", "list").stdout == ""  # all or nothing

    fine = write_json(tmp_path / "fine.json", [{"name": "alice", "delivery": good}])
    assert notifier(conf, "users", "import", fine).returncode == 0
    shown = json.loads(notifier(conf, "users", "show", "alice", "--json").stdout)
    assert shown["delivery"] == good


def test_users_add_checks_addresses_and_nicks(conf: Path) -> None:
    bad_email = notifier(conf, "users", "add", "bob", "--email", "bob at example.org")
    assert bad_email.returncode == 2
    assert ("Invalid value for '--email': 'bob at example.org' is not an email address: "
            "it has no '@'") in bad_email.stderr
    bad_nick = notifier(conf, "users", "add", "bob", "--ircnick", "bob!")
    assert bad_nick.returncode == 2
    assert "Invalid value for '--ircnick': 'bob!' is not an IRC nick" in bad_nick.stderr
    assert notifier(conf, "users", "list").stdout == ""
    good = notifier(conf, "users", "add", "bob", "--email", "bob@example.org",
                    "--ircnick", "bob_")
    assert good.returncode == 0, good.stderr


def test_users_import_upserts_and_keeps_feed_tokens(conf: Path, tmp_path: Path) -> None:
    delivery = {"email": {"address": "a@example.org",
                          "digest": {"every": "1h", "max_items": 100}},
                "irc": {"nick": "al", "digest": None}}
    first = write_json(tmp_path / "u1.json", [
        {"name": "alice", "emails": ["a@example.org"], "ircnicks": ["al"],
         "groups": ["packager"], "delivery": delivery},
        {"name": "bob"},
    ])
    result = notifier(conf, "users", "import", first)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{first}: 2 created, 0 updated, 0 unchanged\n"
    before = json.loads(notifier(conf, "users", "show", "alice", "--json").stdout)
    assert before["delivery"] == delivery

    second = write_json(tmp_path / "u2.json", [{"name": "alice", "groups": []},
                                               {"name": "bob"}, {"name": "carol"}])
    result = notifier(conf, "users", "import", second)
    assert result.stdout == f"{second}: 1 created, 1 updated, 1 unchanged\n"
    after = json.loads(notifier(conf, "users", "show", "alice", "--json").stdout)
    assert after == {**before, "groups": []}

    # From stdin; a feed token cannot be imported.
    result = notifier(conf, "users", "import", "-",
                      input=json.dumps([{"name": "dave", "feed_token": "x"}]))
    assert result.returncode == 1
    assert "<stdin>: record 0 ('dave'): 'feed_token' cannot be set" in result.stderr


def test_owners_import_applies_the_delta(conf: Path, tmp_path: Path) -> None:
    first = write_json(tmp_path / "o1.json", {"packages": {
        "requests": {"users": ["alice", "bob"], "groups": ["python-sig"]},
        "kernel": {"users": ["carol"]}}})
    result = notifier(conf, "owners", "import", first)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{first}: 2 packages, 4 owners added, 0 removed\n"

    second = write_json(tmp_path / "o2.json", {"packages": {
        "requests": {"users": ["alice", "dave"]}}})
    preview = notifier(conf, "owners", "import", second, "--dry-run", "-v")
    assert preview.stdout == ("- requests group python-sig\n- requests user bob\n"
                              "+ requests user dave\n"
                              f"{second}: 1 packages, 1 owners would be added, "
                              "2 would be removed\n")
    result = notifier(conf, "owners", "import", second)
    assert result.stdout == f"{second}: 1 packages, 1 owners added, 2 removed\n"
    assert notifier(conf, "owners", "list").stdout == (
        "kernel user carol\nrequests user alice\nrequests user dave\n")

    result = notifier(conf, "owners", "import", second, "--replace")
    assert result.stdout == f"{second}: 1 packages, 0 owners added, 1 removed\n"
    listed = notifier(conf, "owners", "list", "--json", "--package", "requests").stdout
    assert [json.loads(line) for line in listed.splitlines()] == [
        {"package": "requests", "kind": "user", "name": "alice"},
        {"package": "requests", "kind": "user", "name": "dave"}]

    bad = write_json(tmp_path / "bad.json", {"packages": {"x": {"owners": ["a"]}}})
    result = notifier(conf, "owners", "import", bad)
    assert result.returncode == 1
    assert f"{bad}: package 'x': unknown key 'owners'" in result.stderr


HISTORY_LINES = [
    # a fedmsg envelope
    {"i": 1, "msg": {"commit": {"repo": "kernel"}}, "msg_id": "2024-aaa",
     "timestamp": 4_000_000_000, "topic": "org.fedoraproject.prod.git.receive",
     "username": "apache"},
    # a fedora-messaging record line
    {"topic": "org.fedoraproject.prod.bodhi.update.comment",
     "headers": {"sent-at": "2096-10-02T07:06:41+00:00"}, "id": "uuid-b",
     "body": {"comment": {"text": "works ☃"}}, "queue": None, "priority": 0},
    # a bare message, with no id and no time
    {"topic": "org.example.copr.build.end", "msg": {"build": 7}},
]


def test_history_import_and_list(conf: Path, tmp_path: Path) -> None:
    lines = [json.dumps(obj, ensure_ascii=False) for obj in HISTORY_LINES]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join([lines[0], "not json", lines[1], "", "[1, 2]", lines[2],
                               lines[0], '{"msg": {}}']) + "\n", encoding="utf-8")
    result = notifier_process(conf, "history", "import", str(path))
    assert result.returncode == 1
    assert f"{path}: 4 messages read, 3 new, 1 already stored, 3 bad lines skipped" \
        in result.stdout
    assert f"{path}:2: invalid JSON" in result.stderr
    assert f"{path}:5: expected a JSON object, not list" in result.stderr
    assert f"{path}:8: no 'topic' string" in result.stderr
    assert f"Error: {path}: 3 bad lines skipped" in result.stderr

    again = notifier(conf, "history", "import", str(path))
    assert f"{path}: 4 messages read, 0 new, 4 already stored" in again.stdout

    # Oldest first: the bare message was stored "now", the others are in the future.
    listed = notifier(conf, "history", "list", "--json").stdout.splitlines()
    assert [json.loads(line) for line in listed] == [HISTORY_LINES[2], HISTORY_LINES[0],
                                                     HISTORY_LINES[1]]
    assert listed[1] == json.dumps(HISTORY_LINES[0], separators=(",", ":"))
    assert list(json.loads(listed[2])) == list(HISTORY_LINES[1])

    human = notifier(conf, "history", "list", "--topic", "*.git.*").stdout.splitlines()
    assert len(human) == 1
    assert human[0].endswith(" org.fedoraproject.prod.git.receive 2024-aaa")
    assert human[0][:19].count("-") == 2 and human[0][:19].count(":") == 2

    recent = notifier(conf, "history", "list", "--since", "1h", "--topic", "org.example.*",
                      "--json").stdout.splitlines()
    assert [json.loads(line) for line in recent] == [HISTORY_LINES[2]]
    bad_since = notifier(conf, "history", "list", "--since", "yesterday")
    assert bad_since.returncode == 2
    assert "'yesterday' is not a duration" in bad_since.stderr


def test_history_prune_uses_the_retention(conf: Path, tmp_path: Path) -> None:
    now = int(time.time())
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps({"topic": "t", "msg_id": f"m{age}",
                                        "timestamp": now - age}) + "\n"
                            for age in (10, 1800, 7200, 90000)))
    assert notifier(conf, "history", "import", str(path)).returncode == 0
    result = notifier(conf, "history", "prune")
    assert result.stdout == "2 messages older than 3600 s removed\n"
    result = notifier(conf, "history", "prune", "--older-than", "15m")
    assert result.stdout == "1 messages older than 900 s removed\n"
    left = notifier(conf, "history", "list", "--json").stdout.splitlines()
    assert [json.loads(line)["msg_id"] for line in left] == ["m10"]


def test_history_import_shows_progress_on_a_terminal(conf: Path, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps({"topic": "t", "msg": {"n": i}}) + "\n"
                            for i in range(3000)))
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(BIN / "notifier"), "history", "import", str(path),
                             "--config", str(conf)], stderr=follower,
                            stdout=subprocess.PIPE, text=True)
    os.close(follower)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process has exited and all it wrote was read
                break
            if not chunk:
                break
            shown += chunk
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "3000 messages read, 3000 new" in out
    assert b"Importing" in shown
    assert b"100%" in shown


@pytest.mark.parametrize("command", [
    ["db", "upgrade"], ["db", "current"],
    ["users", "add"], ["users", "list"], ["users", "show"], ["users", "remove"],
    ["users", "import"],
    ["owners", "import"], ["owners", "list"],
    ["history", "import"], ["history", "list"], ["history", "prune"],
])
def test_every_command_takes_config_and_explains_itself(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--config PATH" in result.output
    assert len(result.output.split("Options:")[0].split()) > 8


def test_import_help_states_all_or_nothing() -> None:
    text = CliRunner().invoke(cli, ["users", "import", "--help"]).output
    assert "All or nothing" in text
    text = CliRunner().invoke(cli, ["owners", "import", "--help"]).output
    assert "--replace" in text and "keeps its owners" in text
