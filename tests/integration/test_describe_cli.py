"""``notifier describe`` run as the console script, on files and on stdin."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run
from tests.unit.meta import samples

pytestmark = pytest.mark.integration


def _lines(*messages: object) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def test_a_file_with_bad_lines(tmp_path: Path):
    dump = tmp_path / "datanommer.jsonl"
    cut_short = '{"topic": "org.fedoraproject.prod.bodhi.update.comment", "msg": '
    dump.write_text(
        _lines(samples.BODHI_COMMENT, samples.RECORDED_COPR)
        + cut_short + "\n"
        + "\n"
        + _lines(["not", "a", "message"], samples.LOG_LINE, samples.BARE),
        encoding="utf-8")
    with dump.open("ab") as fh:
        fh.write(b'{"topic": "caf\xe9", "msg": {}}\n')
    result = run("notifier", "describe", str(dump))
    assert result.returncode == 1, result.stderr
    described = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["msg_id"] for d in described] == [
        samples.BODHI_COMMENT["msg_id"], samples.RECORDED_COPR["id"],
        samples.LOG_LINE["msg_id"], described[3]["msg_id"]]
    assert described[0]["summary"] == ("marta commented on bodhi update "
                                       "rust-ripgrep-14.1.0-1.fc40 (karma: 1)")
    assert described[2]["summary"] == "Rebooting proxy01 for the kernel update"
    assert described[3]["msg_id"].startswith("sha256:")
    assert all(list(d) == ["msg_id", "topic", "app", "summary", "link", "icon", "usernames",
                           "agent", "packages", "containers", "modules", "flatpaks", "groups",
                           "severity"] for d in described)
    errors = result.stderr.splitlines()
    assert (f"notifier describe: {dump} line 3: invalid JSON: Expecting value "
            f"(column {len(cut_short) + 1})") in errors
    assert f"notifier describe: {dump} line 5: a message must be a JSON object, not an array" \
        in errors
    assert f"notifier describe: {dump} line 8: not UTF-8 (byte 15)" in errors
    assert errors[-1] == f"notifier describe: 3 lines of {dump} could not be described"


def test_stdin_with_a_config_mapping(tmp_path: Path):
    config = tmp_path / "notifier.toml"
    config.write_text(textwrap.dedent("""\
        topic_prefix = "org.example"
        environment = "prod"

        [[meta.mappings]]
        topic = "org.example.prod.ci.pipeline.*"
        app = "ci"
        summary = "pipeline {pipeline}: {result}"
        usernames_paths = ["people.name"]
        severity = "warning"
        """))
    message = dict(samples.BARE, msg=dict(samples.BARE["msg"],
                                          people=[{"name": "zoe"}, {"name": "al"}]))
    for args in ((), ("-",)):
        result = run("notifier", "describe", "--config", str(config), *args,
                     input=_lines(message, samples.LOG_LINE))
        assert result.returncode == 0, result.stderr
        first, second = (json.loads(line) for line in result.stdout.splitlines())
        assert first["summary"] == "pipeline 42: success"
        assert first["usernames"] == ["al", "zoe"]
        assert first["severity"] == "warning"
        assert first["app"] == "ci"
        assert second["summary"] == "Rebooting proxy01 for the kernel update"
        assert result.stderr == ""


def test_a_missing_file_and_a_bad_config(tmp_path: Path):
    result = run("notifier", "describe", str(tmp_path / "nope.jsonl"))
    assert result.returncode != 0
    assert "nope.jsonl" in result.stderr
    config = tmp_path / "bad.toml"
    config.write_text('[[meta.mappings]]\ntopic = "x.*"\nseverity = "loud"\n')
    result = run("notifier", "describe", "--config", str(config), input="")
    assert result.returncode == 1
    assert f"{config}: meta.mappings[0].severity: 'loud' is not one of" in result.stderr


def test_installed_schema_packages_are_found_on_the_entry_point(tmp_path: Path):
    """A schema package on the path is picked up through ``fedora.messages``."""
    pytest.importorskip("fedora_messaging")
    site = tmp_path / "site"
    package = site / "ciexample_messages"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent('''\
        from fedora_messaging.message import Message


        class Finished(Message):
            topic = "ci.build.finished"

            @property
            def summary(self):
                return f"{self.body['owner']} finished build {self.body['id']}"

            @property
            def agent_name(self):
                return self.body["owner"]
        '''))
    dist = site / "ciexample_messages-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ciexample-messages\n"
                                   "Version: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fedora.messages]\nciexample.finished.v1 = ciexample_messages:Finished\n")
    record = {"topic": "org.example.prod.ci.build.finished", "id": "abc",
              "headers": {"fedora_messaging_schema": "ciexample.finished.v1"},
              "body": {"owner": "ada", "id": 7}, "queue": None, "priority": 0}
    env = dict(os.environ, PYTHONPATH=str(site))
    result = run("notifier", "describe", input=_lines(record), env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["summary"] == "ada finished build 7"
    assert described["agent"] == "ada"
    assert described["msg_id"] == "abc"
