"""``notifier tokens create|list|revoke USER`` and ``notifier users login-link NAME``.

Through click's runner in this process (no start-up cost), against a SQLite
database of the test's own; one run as the installed console script.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifier.cli.main import cli
from notifier.storage import Store
from notifier.storage.credentials import LINK_TTL, TOKEN_PREFIX, Credentials, secret_hash
from tests.conftest import run

pytestmark = pytest.mark.integration

TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "n.db"}"\n'
                    '[http]\nbase_url = "https://notify.example.org"\n')
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as store:
        store.import_users([{"name": "alice"}, {"name": "bob"}])
    return path


def notifier(conf: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--config", str(conf)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def store_of(conf: Path) -> Store:
    return Store(f"sqlite:///{conf.parent / 'n.db'}", create=False)


def test_create_prints_the_token_once_and_stores_its_hash(conf: Path) -> None:
    code, out, err = notifier(conf, "tokens", "create", "alice", "--name", "laptop",
                              "--scope", "write")
    assert code == 0, err
    secret = out.strip()
    assert TOKEN.fullmatch(secret)
    assert "'laptop' (write) for alice" in err and "not shown again" in err
    with store_of(conf) as store:
        token = Credentials(store).token(secret)
        assert token is not None and (token.user, token.scope) == ("alice", "write")
    dump = (conf.parent / "n.db").read_bytes()
    for wal in conf.parent.glob("n.db-wal"):
        dump += wal.read_bytes()
    assert secret.encode() not in dump and secret_hash(secret).encode() in dump
    code, out, err = notifier(conf, "tokens", "list", "alice")
    assert secret not in out + err


def test_list_shows_name_scope_and_last_use(conf: Path) -> None:
    assert notifier(conf, "tokens", "list", "alice")[2].strip() == "alice has no tokens"
    used = notifier(conf, "tokens", "create", "alice", "--name", "phone")[1].strip()
    notifier(conf, "tokens", "create", "alice", "--name", "desktop", "--scope", "write")
    with store_of(conf) as store:
        assert Credentials(store).token(used) is not None
    code, out, _ = notifier(conf, "tokens", "list", "alice")
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(f[1], f[2]) for f in lines] == [("desktop", "write"), ("phone", "read")]
    assert lines[0][4] == "last used never" and re.fullmatch(
        r"last used \d{4}-\d\d-\d\d \d\d:\d\d UTC", lines[1][4])
    code, out, _ = notifier(conf, "tokens", "list", "alice", "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [t["name"] for t in listed] == ["desktop", "phone"]
    assert listed[0]["last_used"] is None and listed[1]["last_used"] > 0
    assert notifier(conf, "tokens", "list", "bob", "--json")[1] == ""


def test_revoke_by_id_or_name_stops_the_token(conf: Path) -> None:
    one = notifier(conf, "tokens", "create", "alice", "--name", "one")[1].strip()
    two = notifier(conf, "tokens", "create", "alice", "--name", "two")[1].strip()
    with store_of(conf) as store:
        (first,) = [t for t in Credentials(store).tokens("alice") if t.name == "one"]
    code, out, _ = notifier(conf, "tokens", "revoke", "alice", str(first.id))
    assert code == 0 and out.strip() == f"revoked token '{first.id}' of alice"
    code, out, _ = notifier(conf, "tokens", "revoke", "alice", "two")
    assert code == 0
    with store_of(conf) as store:
        assert Credentials(store).token(one) is None
        assert Credentials(store).token(two) is None


def test_clear_errors(conf: Path) -> None:
    for args in (("tokens", "create", "nobody", "--name", "x"), ("tokens", "list", "nobody"),
                 ("tokens", "revoke", "nobody", "1"), ("users", "login-link", "nobody")):
        code, _, err = notifier(conf, *args)
        assert code == 1, args
        assert "no local user 'nobody' (see 'notifier users list')" in err, args
    code, _, err = notifier(conf, "tokens", "revoke", "alice", "ghost")
    assert code == 1
    assert "alice has no token with id or name 'ghost' (see 'notifier tokens list alice')" \
        in err
    notifier(conf, "tokens", "create", "bob", "--name", "bobs")
    code, _, err = notifier(conf, "tokens", "revoke", "alice", "bobs")  # not alice's
    assert code == 1 and "alice has no token" in err
    notifier(conf, "tokens", "create", "alice", "--name", "twice")
    code, _, err = notifier(conf, "tokens", "create", "alice", "--name", "twice")
    assert code == 1 and "already has a token named 'twice'" in err
    assert "Traceback" not in err
    code, _, err = notifier(conf, "tokens", "create", "alice", "--name", "x", "--scope", "all")
    assert code == 2 and "'all' is not one of 'read', 'write'" in err


def test_help_texts() -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["tokens", "--help"]).output
    assert "Authorization: Bearer" in text and "read" in text and "write" in text
    for command in ("create", "list", "revoke"):
        assert "USER" in runner.invoke(cli, ["tokens", command, "--help"]).output
    assert "--scope [read|write]" in runner.invoke(cli, ["tokens", "create", "--help"]).output
    text = runner.invoke(cli, ["users", "login-link", "--help"]).output
    assert "single-use sign-in link" in text and "--minutes" in text and "15" in text


def test_login_link_is_single_use_and_lasts_15_minutes(conf: Path) -> None:
    code, out, err = notifier(conf, "users", "login-link", "alice")
    assert code == 0, err
    url = out.strip()
    match = re.fullmatch(r"https://notify\.example\.org/signin/link/([A-Za-z0-9_-]{43})", url)
    assert match
    with store_of(conf) as store:
        credentials = Credentials(store)
        assert credentials.link_user(match.group(1)) == "alice"
        credentials.clock = lambda: time.time() + LINK_TTL + 1
        assert credentials.link_user(match.group(1)) is None  # expired by then
        credentials.clock = time.time
        assert credentials.use_link(match.group(1)) == "alice"
        assert credentials.use_link(match.group(1)) is None


def test_login_link_minutes(conf: Path) -> None:
    code, out, _ = notifier(conf, "users", "login-link", "alice", "--minutes", "60")
    assert code == 0
    secret = out.strip().rsplit("/", 1)[1]
    with store_of(conf) as store:
        credentials = Credentials(store)
        credentials.clock = lambda: time.time() + 59 * 60
        assert credentials.link_user(secret) == "alice"
    assert notifier(conf, "users", "login-link", "alice", "--minutes", "0")[0] == 2


def test_as_the_installed_command(conf: Path) -> None:
    result = run("notifier", "tokens", "create", "alice", "--name", "script", "--config",
                 str(conf))
    assert result.returncode == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout.strip())
    result = run("notifier", "users", "login-link", "ghost", "--config", str(conf))
    assert result.returncode == 1 and "no local user 'ghost'" in result.stderr
