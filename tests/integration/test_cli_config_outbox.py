"""``--config`` at every level, ``$NOTIFIER_CONFIG``, ``outbox retry`` and quiet ``describe``.

Commands run in-process with click's runner, against a real SQLite database
under tmp_path, except where the process itself matters (its environment,
its logging), which runs the installed console script.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from notifier.cli.main import SUBCOMMANDS, cli
from notifier.config import load_config
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.conftest import run
from tests.integration.outbox_rows import envelope, note

pytestmark = pytest.mark.integration


def make_config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / name}.db"\n')
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def every_command() -> list[tuple[str, ...]]:
    """The path of every group and command under ``notifier``."""
    paths: list[tuple[str, ...]] = [()]
    ctx = click.Context(cli)

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            paths.append((*path, name))
            if isinstance(command, click.Group):
                walk(command, (*path, name))

    walk(cli, ())
    return paths


def test_every_group_and_command_takes_config() -> None:
    paths = every_command()
    assert {p[0] for p in paths if p} == set(SUBCOMMANDS)
    assert ("users", "list") in paths and ("rules", "import") in paths
    missing = [" ".join(p) or "notifier" for p in paths
               if "--config" not in invoke(*p, "--help").output]
    assert missing == []


@pytest.mark.parametrize("where", ["top", "group", "command"])
def test_config_is_taken_at_any_level(tmp_path: Path, where: str) -> None:
    conf = make_config(tmp_path, "mine")
    with Store.from_config(load_config(conf)) as store:
        store.add_user({"name": "alice"})
    args = {"top": ["--config", str(conf), "users", "list"],
            "group": ["users", "--config", str(conf), "list"],
            "command": ["users", "list", "--config", str(conf)]}[where]
    result = invoke(*args, env={"NOTIFIER_CONFIG": str(make_config(tmp_path, "other"))})
    assert result.exit_code == 0, result.output
    assert result.stdout == "alice\n"


def test_the_innermost_config_wins(tmp_path: Path) -> None:
    outer, inner = make_config(tmp_path, "outer"), make_config(tmp_path, "inner")
    with Store.from_config(load_config(inner)) as store:
        store.add_user({"name": "inner-user"})
    result = invoke("--config", str(outer), "users", "--config", str(inner), "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == "inner-user\n"
    result = invoke("--config", str(outer), "db", "--config", str(inner), "current")
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "inner.db") in result.stdout


def test_a_bad_group_config_is_named_as_the_option(tmp_path: Path) -> None:
    result = invoke("rules", "--config", str(tmp_path / "missing.toml"), "list")
    assert result.exit_code == 2
    assert f"Invalid value for '--config': {tmp_path / 'missing.toml'}: config file not found" \
        in result.stderr


def test_a_bad_file_from_the_environment_is_named_as_such(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("databse_url = 'sqlite://'\n")
    env = {**os.environ, "NOTIFIER_CONFIG": str(bad)}
    result = run("notifier", "users", "list", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: $NOTIFIER_CONFIG: {bad}: unknown key 'databse_url'")
    assert "--config" not in result.stderr
    missing = run("notifier", "outbox", "list", env={**env, "NOTIFIER_CONFIG": "/nonexistent"})
    assert missing.returncode == 1
    assert missing.stderr == "Error: $NOTIFIER_CONFIG: /nonexistent: config file not found\n"


# -- outbox retry -----------------------------------------------------------------------

@pytest.fixture
def outbox_conf(tmp_path: Path) -> tuple[Path, Outbox, dict[str, int]]:
    """A database with one dead, one failed and one sent row; their ids by state."""
    conf = make_config(tmp_path, "box")
    outbox = Outbox(Store.from_config(load_config(conf)))
    outbox.record([envelope("m1")], [(note("alice", "m1"), "pending"),
                                     (note("bob", "m1"), "pending"),
                                     (note("carol", "m1"), "pending")])
    dead, failed, sent = outbox.claim("email")
    outbox.mark_failed(dead, "550 no such user", permanent=True, max_attempts=3, base=5, cap=60)
    outbox.mark_failed(failed, "421 later", permanent=False, max_attempts=3, base=5, cap=60)
    outbox.mark_sent([sent.id])
    return conf, outbox, {"dead": dead.id, "failed": failed.id, "sent": sent.id}


def test_retry_names_unknown_and_unretryable_ids(outbox_conf: tuple[Path, Outbox,
                                                                    dict[str, int]]) -> None:
    conf, outbox, ids = outbox_conf
    result = invoke("outbox", "retry", str(ids["dead"]), str(ids["sent"]),
                    str(ids["failed"]), "999", "--config", str(conf))
    assert result.exit_code == 1
    assert result.stdout == "1 notification(s) will be sent again\n"
    assert result.stderr == (
        "Error: 3 of 4 id(s) not retried:\n"
        "  unknown: 999\n"
        f"  not retryable: {ids['sent']} (sent), {ids['failed']} (failed); retry takes dead "
        "ones (failed ones with --failed)\n")
    assert outbox.states(ids.values()) == {ids["dead"]: "pending", ids["failed"]: "failed",
                                           ids["sent"]: "sent"}


def test_retry_of_good_ids_or_all_dead_succeeds(outbox_conf: tuple[Path, Outbox,
                                                                   dict[str, int]]) -> None:
    conf, outbox, ids = outbox_conf
    result = invoke("outbox", "retry", "--failed", str(ids["failed"]), "--config", str(conf))
    assert (result.exit_code, result.stdout) == (0, "1 notification(s) will be sent again\n")
    result = invoke("outbox", "retry", "--config", str(conf))
    assert (result.exit_code, result.stdout) == (0, "1 notification(s) will be sent again\n")
    assert invoke("outbox", "retry", "--config", str(conf)).stdout == \
        "0 notification(s) will be sent again\n"
    assert set(outbox.states(ids.values()).values()) == {"pending", "sent"}


def test_retry_of_an_unknown_id_alone_fails(outbox_conf: tuple[Path, Outbox,
                                                                dict[str, int]]) -> None:
    conf, outbox, ids = outbox_conf
    result = invoke("outbox", "retry", "12345", "--config", str(conf))
    assert result.exit_code == 1
    assert "unknown: 12345" in result.stderr
    assert outbox.states([ids["dead"]]) == {ids["dead"]: "dead"}


# -- describe -------------------------------------------------------------------------

# fedmsg.meta's Bugzilla processor looks up the e-mail addresses; with no FAS
# credentials (on purpose) each lookup logs warnings, which notifier turns into debug.
BUGZILLA = {"topic": "org.fedoraproject.prod.bugzilla.bug.update", "msg": {
    "bug": {"id": 1, "summary": "x", "component": "kernel", "product": "Fedora",
            "creator": "a@example.com", "assigned_to": "b@example.com",
            "weburl": "https://bugzilla.example.org/1", "cc": []},
    "event": {"who": "c@example.com", "changes": []}, "comment": None}}


def test_describe_keeps_library_debug_lines_for_verbose(tmp_path: Path) -> None:
    pytest.importorskip("fedmsg_meta_fedora_infrastructure")
    conf = make_config(tmp_path, "d")
    line = json.dumps(BUGZILLA) + "\n"
    quiet = run("notifier", "describe", "--config", str(conf), input=line)
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["app"] == "bugzilla"
    assert quiet.stderr == ""
    verbose = run("notifier", "describe", "-v", "--config", str(conf), input=line)
    assert " DEBUG moksha.hub: " in verbose.stderr  # the same lines are still there for -v
