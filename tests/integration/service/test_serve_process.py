"""``notifier serve`` as systemd runs it: one per SQLite database, a quiet normal stop, a
sender process replaced when it dies alone."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.config import load_config
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.conftest import WAIT, free_port, run, wait_for
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.outbox_rows import envelope, note
from tests.integration.serveproc import ServeProcess, write_toml

pytestmark = pytest.mark.integration


def serve_config(tmp_path: Path, name: str, extra: dict[str, Any] | None = None) -> Path:
    http = f"127.0.0.1:{free_port()}"
    return write_toml(tmp_path / f"{name}.toml", {
        "database_url": f"sqlite:///{tmp_path / 'notifier.db'}",
        "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": http},
        "email": {"maildir": str(tmp_path / "Maildir")},
        **(extra or {})})


def http_of(config: Path) -> str:
    return load_config(str(config)).http.listen


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for serve in started:
        serve.ensure_stopped()


def test_a_second_serve_on_the_same_sqlite_file_names_the_first_and_touches_nothing(
        tmp_path: Path, serving: list[ServeProcess]) -> None:
    first_config = serve_config(tmp_path, "first")
    first = ServeProcess(first_config, http_of(first_config), tmp_path / "first.log")
    serving.append(first)
    first.start()
    # A row the first service has in flight: claimed, for two minutes.
    with Store(f"sqlite:///{tmp_path / 'notifier.db'}", create=False) as store:
        _m, _n, (row,) = Outbox(store).record_and_claim(
            [envelope("m1")], [(note("zoe", "m1"), "pending")], claim={"email"})

    # Another config (other ports, so nothing else clashes), the same database.
    second = run("notifier", "serve", "--config", str(serve_config(tmp_path, "second")),
                 timeout=60)
    assert second.returncode == 1, second.stderr
    assert f"another notifier serve (process {first.proc.pid})" in second.stderr  # type: ignore[union-attr]
    assert "one service per SQLite database" in second.stderr
    assert "Traceback" not in second.stderr
    with Store(f"sqlite:///{tmp_path / 'notifier.db'}", create=False) as store:
        (after,) = Outbox(store).rows()
    assert after.claimed_until == row.claimed_until  # the first one's claim was not freed
    assert first.get("/healthz")[0] == 200
    assert first.stop() == 0


def senders(serve: ServeProcess) -> list[int]:
    """The sender processes among the service's children (by the name each gives itself)."""
    return children_named(serve, "notifier-sender")


def children_named(serve: ServeProcess, name: str) -> list[int]:
    found = []
    for pid in serve.children():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == name:
            found.append(pid)
    return found


def sent_rows(serve: ServeProcess) -> int:
    """How many outbox rows of ``serve``'s database are recorded sent."""
    result = run("notifier", "outbox", "list", "--state", "sent", "--json",
                 "--config", str(serve.config))
    assert result.returncode == 0, result.stderr
    return len(result.stdout.splitlines())


def log_lines(serve: ServeProcess, start: int = 0) -> list[str]:
    return serve.log().splitlines()[start:]


@pytest.fixture
def mail_serve(tmp_path: Path, smtp: SmtpPeer, serving: list[ServeProcess]) -> Any:
    """A service sending alice's git messages over SMTP, from its sender process, started in
    a process group of its own; ``publish(text)``; ``mailed()`` the subjects received."""
    config = serve_config(tmp_path, "serve", {"email": {**smtp.config()["email"]}})
    users = [{"name": "alice", "emails": ["alice@example.org"]}]
    rules = [{"user": "alice", "name": "git", "destinations": ["email"],
              "track": {"kind": "topics", "patterns": ["*.git.*"]}}]
    (tmp_path / "users.json").write_text(json.dumps(users))
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    for kind in ("users", "rules"):
        result = run("notifier", kind, "import", str(tmp_path / f"{kind}.json"),
                     "--config", str(config))
        assert result.returncode == 0, result.stderr
    serve = ServeProcess(config, http_of(config), tmp_path / "serve.log")
    serving.append(serve)
    serve.start(new_session=True)

    def publish(text: str) -> None:
        result = run("notifier-logger", "--modname=git", "--topic=repo.update",
                     "--config", str(config), input=text + "\n")
        assert result.returncode == 0, result.stderr

    def mailed() -> list[str]:
        return sorted(str(m.message["Subject"]) for m in smtp.handler.messages)

    return serve, publish, mailed


def test_sigterm_to_the_process_group_stops_quietly_and_exits_0(mail_serve: Any) -> None:
    serve, publish, mailed = mail_serve
    publish("one")
    wait_for(lambda: mailed() == ["[git] one"], "the first mail", context=serve.log)
    assert len(senders(serve)) == 1
    # systemd's stop: SIGTERM to every process of the group at once.
    assert serve.proc is not None
    os.killpg(serve.proc.pid, signal.SIGTERM)
    started = time.monotonic()
    assert serve.proc.wait(WAIT) == 0
    assert time.monotonic() - started < 15
    lines = log_lines(serve)
    assert [line for line in lines if " ERROR " in line or " CRITICAL " in line
            or "Traceback" in line] == []
    assert lines[-1].endswith("stopped")


def test_a_sender_process_killed_alone_is_replaced_and_counted(mail_serve: Any) -> None:
    serve, publish, mailed = mail_serve
    publish("one")
    wait_for(lambda: mailed() == ["[git] one"], "the first mail", context=serve.log)
    # Killed between the server's answer and the row's "sent", the child's successor
    # would send it again (at least once, by design): kill it once that is written.
    wait_for(lambda: serve.metric("notifier_outbox_depth") == 0 and sent_rows(serve) == 1,
             "the first mail to be recorded sent", context=serve.log)
    (child,) = senders(serve)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: serve.metric('notifier_component_restarts_total{component="sender"}') >= 1,
             "the restart to be counted", context=serve.log)
    wait_for(lambda: serve.get("/healthz")[0] == 200 and senders(serve) not in ([], [child]),
             "another sender process, ready", context=serve.log)
    publish("two")
    wait_for(lambda: mailed() == ["[git] one", "[git] two"], "a mail from the new child",
             context=serve.log)
    log = serve.log()
    assert serve.metric('notifier_component_restarts_total{component="sender"}') == 1, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "sender failed" in errors[0] and f"pid {child}" in errors[0], log
    code = serve.stop()
    assert code == 0, serve.log()


def test_the_http_process_killed_alone_is_replaced_and_requests_wait_for_it(
        mail_serve: Any) -> None:
    serve, publish, mailed = mail_serve
    wait_for(lambda: children_named(serve, "notifier-http") != [], "the HTTP process",
             context=serve.log)
    (child,) = children_named(serve, "notifier-http")
    os.kill(child, signal.SIGKILL)
    # serve keeps the socket listening: this request waits in its backlog for the next child.
    status, _, _ = serve.get("/healthz")
    assert status in (200, 503)  # answered (ready, or not yet), never refused
    assert children_named(serve, "notifier-http") not in ([], [child]), serve.log()
    wait_for(lambda: serve.get("/healthz")[0] == 200, "health to be 200 again",
             context=serve.log)
    assert serve.metric('notifier_component_restarts_total{component="http"}') == 1
    publish("after")
    wait_for(lambda: mailed() == ["[git] after"], "mail after the restart", context=serve.log)
    errors = [line for line in serve.log().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"pid {child}" in errors[0], serve.log()
    assert serve.stop() == 0, serve.log()


def test_the_start_up_log_says_where_mail_goes(
        tmp_path: Path, serving: list[ServeProcess]) -> None:
    config = serve_config(tmp_path, "maildir")
    serve = ServeProcess(config, http_of(config), tmp_path / "serve.log")
    serving.append(serve)
    serve.start()
    backends = [line for line in serve.log().splitlines() if "backends: " in line]
    assert backends and f"email (Maildir {tmp_path / 'Maildir'})" in backends[0], serve.log()
    assert serve.stop() == 0
