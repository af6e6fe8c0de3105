"""The sender process for real: a spawned child, a SQLite file, an aiosmtpd server.

The parent records rows in the outbox and hands them to the child over the
pipe (or leaves them in the database for the child to find); the child sends
them through its own SMTP connections and marks them sent in its own
database connection. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifier.backends.registry import backend_class
from notifier.config import Config, config_from_dict
from notifier.delivery.sender import SIGTERM_GRACE, SenderProcess
from notifier.errors import ConfigError
from notifier.service.supervisor import Supervisor
from notifier.storage import Store
from notifier.storage.outbox import Outbox, OutboxRow
from tests.conftest import wait_for
from tests.integration.backends.peers_email import RecordingHandler, SmtpPeer
from tests.integration.outbox_rows import envelope, note

pytestmark = pytest.mark.integration

#: seconds to wait for anything the child does (a spawn and imports take about one)
WAIT = 20.0


class Results:
    """``on_result`` for the sender: every ``(destination, outcome, n)`` it was told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, destination: str, outcome: str, n: int) -> None:
        with self._lock:
            self.calls.append((destination, outcome, n))

    def total(self, outcome: str) -> int:
        with self._lock:
            return sum(n for _d, o, n in self.calls if o == outcome)

    def outcomes(self) -> set[tuple[str, str]]:
        with self._lock:
            return {(d, o) for d, o, _n in self.calls}


class GatedHandler(RecordingHandler):
    """Holds every ``DATA`` until ``gate`` is set; ``entered`` tells that one arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.entered.set()
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        return await super().handle_DATA(server, session, envelope)


def stderr_says(capfd: pytest.CaptureFixture[str], text: str) -> Callable[[], bool]:
    """Whether ``text`` was written to stderr so far (a child's stderr is ours too)."""
    written: list[str] = []

    def said() -> bool:
        written.append(capfd.readouterr().err)
        return text in "".join(written)

    return said


def make_config(tmp_path: Path, smtp: SmtpPeer, **email: Any) -> Config:
    settings = {**smtp.config()["email"], "connections": 2, "timeout": 10.0, **email}
    return config_from_dict({"database_url": f"sqlite:///{tmp_path / 'n.db'}",
                             "email": settings})


def record(outbox: Outbox, users: list[str], msg_id: str, *, claimed: bool) -> list[OutboxRow]:
    """Record one pending email per user; return the rows claimed with them."""
    _m, new, rows = outbox.record_and_claim(
        [envelope(msg_id)], [(note(user, msg_id), "pending") for user in users],
        claim={"email"} if claimed else ())
    assert new == len(users)
    assert [row.user for row in rows] == (users if claimed else [])
    return rows


def recipients(smtp: SmtpPeer) -> list[str]:
    return sorted(rcpt for m in smtp.handler.messages for rcpt in m.rcpt_tos)


def addresses(users: list[str]) -> list[str]:
    return sorted(f"{user}@example.org" for user in users)


def states(outbox: Outbox) -> dict[str, str]:
    return {row.user: row.state for row in outbox.rows()}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    """The SQLite file the child opens too, with the schema made here first."""
    store = Store(f"sqlite:///{tmp_path / 'n.db'}", create=True)
    yield store
    store.close()


class Supervised:
    """A SenderProcess under a supervisor of its own, with short restart backoffs."""

    def __init__(self, sender: SenderProcess):
        self.sender = sender
        self.restarts: list[str] = []
        self.supervisor = Supervisor(on_restart=self.restarts.append, backoff_base=0.05,
                                     backoff_cap=0.1)
        self.supervisor.add(sender)

    def stop(self, timeout: float = 30.0) -> None:
        self.supervisor.stop(["sender"], timeout)


@pytest.fixture
def start_sender(db: Store, smtp: SmtpPeer) -> Iterator[Callable[..., Supervised]]:
    """Start a SenderProcess under a supervisor; every one is stopped, its child gone, at
    teardown."""
    started: list[Supervised] = []

    def start(config: Config, on_result: Results, **kw: Any) -> Supervised:
        running = Supervised(SenderProcess(config, ["email"], on_result=on_result, **kw))
        started.append(running)
        running.supervisor.start()
        return running

    yield start
    for running in started:
        running.stop(timeout=10)
        process = running.sender._process
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)


def wait_ready(sender: SenderProcess) -> None:
    wait_for(lambda: sender.room("email") > 0, "the sender process to be ready")


def test_handed_rows_are_sent_counted_and_marked_sent(
        tmp_path: Path, db: Store, smtp: SmtpPeer,
        start_sender: Callable[..., Supervised]) -> None:
    results = Results()
    sender = start_sender(make_config(tmp_path, smtp), results).sender
    assert sender.room("email") == 0  # nothing is handed over before the child is ready
    wait_ready(sender)
    assert sender.room("email") == sender.limit
    assert sender.names == ["worker-email-1", "worker-email-2"]  # the child's, one per connection

    outbox = Outbox(db)
    users = [f"user{i}" for i in range(12)]
    sender.put("email", record(outbox, users, "m1", claimed=True))

    wait_for(lambda: len(smtp.handler.messages) >= len(users), "12 mails at the SMTP server")
    wait_for(lambda: set(states(outbox).values()) == {"sent"}, "every row to be marked sent")
    wait_for(lambda: results.total("sent") >= len(users), "on_result to count 12 sent")
    assert recipients(smtp) == addresses(users)  # each user once: no duplicates, none lost
    assert all(len(m.rcpt_tos) == 1 for m in smtp.handler.messages)
    assert {str(m.message["Subject"]) for m in smtp.handler.messages} == {"about m1"}
    assert results.total("sent") == len(users)
    assert results.outcomes() == {("email", "sent")}
    assert outbox.claim("email") == []


def test_room_comes_back_when_the_child_reports_taken_before_put_returns(
        tmp_path: Path, db: Store, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch,
        start_sender: Callable[..., Supervised]) -> None:
    results = Results()
    sender = start_sender(make_config(tmp_path, smtp), results).sender
    wait_ready(sender)
    users = ["alice", "bob", "carol"]
    send = sender._send

    def send_then_pause(message: tuple[Any, ...]) -> bool:
        handed = send(message)
        if message[0] == "rows":
            # The order the scheduler may pick anyway: put()'s thread is paused right after
            # the pipe write while the child takes the rows and reports them. "taken" comes
            # before "outcome" on the pipe, so once on_result counted the sends, the parent
            # has read the "taken" report too.
            wait_for(lambda: results.total("sent") >= len(users), "the child to send the rows")
        return handed

    monkeypatch.setattr(sender, "_send", send_then_pause)
    sender.put("email", record(Outbox(db), users, "m1", claimed=True))
    assert recipients(smtp) == addresses(users)
    # Nothing is left in the child's queue, so the parent should count no row in flight.
    wait_for(lambda: sender.room("email") == sender.limit, "the room to come back", timeout=3)


def test_child_finds_unclaimed_rows_in_the_database(
        tmp_path: Path, db: Store, smtp: SmtpPeer,
        start_sender: Callable[..., Supervised]) -> None:
    outbox = Outbox(db)
    users = ["alice", "bob", "carol"]
    record(outbox, users, "m1", claimed=False)  # pending, before there is any child
    results = Results()
    start_sender(make_config(tmp_path, smtp), results)  # no put, no wake

    wait_for(lambda: len(smtp.handler.messages) >= len(users), "3 mails at the SMTP server")
    wait_for(lambda: set(states(outbox).values()) == {"sent"}, "every row to be marked sent")
    wait_for(lambda: results.total("sent") >= len(users), "on_result to count 3 sent")
    assert recipients(smtp) == addresses(users)
    assert results.total("sent") == len(users)


def test_stop_finishes_the_send_in_progress_and_gives_back_the_rest(
        tmp_path: Path, db: Store, start_sender: Callable[..., Supervised],
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)  # the child logs at the parent's level, to our stderr
    handler = GatedHandler()
    smtp = SmtpPeer(tmp_path)
    smtp.handler = handler
    smtp.start()
    try:
        # One connection: its worker takes one chunk (5 rows) from the queue at a time.
        results = Results()
        running = start_sender(make_config(tmp_path, smtp, connections=1), results)
        sender = running.sender
        wait_ready(sender)
        outbox = Outbox(db)
        users = [f"user{i:02}" for i in range(10)]
        rows = record(outbox, users, "m1", claimed=True)
        sender.put("email", rows)
        # The worker is in the DATA of user00, holding user00-04; user05-09 wait in its queue.
        # Stopping, it finishes that mail only.
        assert handler.entered.wait(WAIT)

        stopper = threading.Thread(target=running.stop, kwargs={"timeout": 20.0})
        stopper.start()
        # The child reads "stop" and tells its worker to stop while the send still waits.
        wait_for(stderr_says(capfd, "sender process: stopping; the sends in progress finish"),
                 "the child to be told to stop")
        assert stopper.is_alive()  # stop() waits for the send in progress
        handler.gate.set()
        stopper.join(WAIT)
        assert not stopper.is_alive(), "stop() did not return"
    finally:
        handler.gate.set()
        smtp.stop()

    process = sender._process
    assert not process.is_alive()
    assert process.exitcode == 0  # it exited on its own, it was not killed
    assert running.restarts == []
    assert sender.room("email") == 0

    # The mail in progress was sent, and marked sent before the child exited; the rest
    # of its chunk was not started.
    sent, held_back = users[:1], users[1:]
    assert recipients(smtp) == addresses(sent)
    assert results.total("sent") == len(sent)
    assert states(outbox) == {**dict.fromkeys(sent, "sent"), **dict.fromkeys(held_back, "pending")}
    # What was still queued was given back: claimable here at once, not in 120 s.
    again = outbox.claim("email")
    assert [row.user for row in again] == held_back
    assert all(row.attempts == 0 for row in again)


def test_a_killed_child_is_replaced_and_the_new_one_sends(
        tmp_path: Path, db: Store, smtp: SmtpPeer, caplog: pytest.LogCaptureFixture,
        start_sender: Callable[..., Supervised]) -> None:
    caplog.set_level(logging.INFO, logger="notifier.service.supervisor")
    results = Results()
    running = start_sender(make_config(tmp_path, smtp), results)
    sender = running.sender
    wait_ready(sender)
    first = sender._process
    os.kill(first.pid, signal.SIGKILL)

    wait_for(lambda: running.restarts and sender.room("email") > 0,
             "another sender process to be ready")
    assert running.restarts == ["sender"]
    assert sender._process.pid != first.pid and sender._process.is_alive()
    assert first.exitcode == -signal.SIGKILL
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR and r.name == "notifier.service.supervisor"]
    assert len(errors) == 1
    assert f"(pid {first.pid})" in errors[0] and f"exited with code {-signal.SIGKILL}" in errors[0]

    # The new child takes rows over the pipe, and finds those left in the database.
    outbox = Outbox(db)
    handed, left = ["alice", "bob"], ["carol", "dave"]
    sender.put("email", record(outbox, handed, "m1", claimed=True))
    record(outbox, left, "m2", claimed=False)
    sender.wake("email", database=True)

    everyone = handed + left
    wait_for(lambda: len(smtp.handler.messages) >= len(everyone), "4 mails at the SMTP server")
    wait_for(lambda: set(states(outbox).values()) == {"sent"}, "every row to be marked sent")
    wait_for(lambda: results.total("sent") >= len(everyone), "on_result to count 4 sent")
    assert recipients(smtp) == addresses(everyone)
    assert results.total("sent") == len(everyone)
    assert running.restarts == ["sender"]


def test_rows_a_killed_child_never_took_are_due_again_at_once(
        tmp_path: Path, db: Store, start_sender: Callable[..., Supervised]) -> None:
    handler = GatedHandler()
    smtp = SmtpPeer(tmp_path)
    smtp.handler = handler
    smtp.start()
    outbox = Outbox(db)
    try:
        # One connection: its worker takes one chunk (5 rows) from the queue at a time.
        running = start_sender(make_config(tmp_path, smtp, connections=1), Results(),
                               on_lost=lambda rows: outbox.release(rows))
        sender = running.sender
        wait_ready(sender)
        users = [f"user{i:02}" for i in range(10)]
        sender.put("email", record(outbox, users, "m1", claimed=True))
        assert handler.entered.wait(WAIT)  # sending user00, holding user00-04
        wait_for(lambda: sender.room("email") == sender.limit - 5, "the child to take 5")
        # No new child for a minute: nobody else claims meanwhile.
        running.supervisor.backoff_base = running.supervisor.backoff_cap = 60.0
        os.kill(sender._process.pid, signal.SIGKILL)
        wait_for(lambda: running.restarts, "the child's death to be seen")
        # What it never took is claimable now, not in two minutes; what it took (and may
        # have sent) waits for its claim to run out.
        assert [row.user for row in outbox.claim("email", lease=1)] == users[5:]
    finally:
        handler.gate.set()
        smtp.stop()


def test_sigterm_to_the_child_alone_stops_it_cleanly_and_it_is_replaced(
        tmp_path: Path, db: Store, smtp: SmtpPeer,
        start_sender: Callable[..., Supervised]) -> None:
    # A SIGTERM for the child alone (not for the whole process group, where notifier serve
    # stops it in its turn) stops it after SIGTERM_GRACE as "stop" does: it exits 0,
    # having given back what it held; it does not ignore it, and it is replaced.
    results = Results()
    running = start_sender(make_config(tmp_path, smtp), results)
    sender = running.sender
    wait_ready(sender)
    first = sender._process
    os.kill(first.pid, signal.SIGTERM)
    # The supervisor's thread joins the child, and whichever thread reaps it sets the
    # exit code: a join here may return before that.
    wait_for(lambda: first.exitcode is not None, "the child to exit",
             timeout=WAIT + SIGTERM_GRACE)
    assert first.exitcode == 0
    wait_for(lambda: running.restarts and sender.room("email") > 0,
             "another sender process to be ready")
    assert running.restarts == ["sender"]
    outbox = Outbox(db)
    record(outbox, ["alice"], "m1", claimed=False)
    sender.wake("email", database=True)
    wait_for(lambda: states(outbox) == {"alice": "sent"}, "the new child to send")
    assert recipients(smtp) == addresses(["alice"])


def test_a_child_keeps_sending_after_sigterm_until_told_to_stop(
        tmp_path: Path, db: Store, smtp: SmtpPeer,
        start_sender: Callable[..., Supervised]) -> None:
    # systemd's SIGTERM reaches the whole process group: the child goes on sending what
    # notifier serve hands it until serve, having drained its ingest, stops it.
    results = Results()
    running = start_sender(make_config(tmp_path, smtp), results)
    sender = running.sender
    wait_ready(sender)
    child = sender._process
    os.kill(child.pid, signal.SIGTERM)
    outbox = Outbox(db)
    sender.put("email", record(outbox, ["alice", "bob"], "m1", claimed=True))
    wait_for(lambda: states(outbox) == {"alice": "sent", "bob": "sent"},
             "the child to send after SIGTERM")
    assert child.is_alive()
    running.stop(timeout=20)
    assert child.exitcode == 0
    assert running.restarts == []
    assert running.supervisor.health("ready")[1]["parts"]["sender"]["state"] == "stopped"


def test_ssl_with_starttls_is_refused_in_the_parent(tmp_path: Path, smtp: SmtpPeer) -> None:
    # What Service does before it spawns a sender process: set up the email backend here.
    backend_class("email")(make_config(tmp_path, smtp)).setup()  # the good config passes
    bad = make_config(tmp_path, smtp, ssl=True, starttls=True)
    with pytest.raises(ConfigError, match="'ssl' and 'starttls' are both true"):
        backend_class("email")(bad).setup()


@pytest.mark.parametrize("settings, expected", [
    ({"email": {"smtp_host": "127.0.0.1", "smtp_port": 2525}}, ["email", "rss"]),
    ({}, ["rss"]),  # a Maildir: written from serve itself
    ({"email": {"smtp_host": "127.0.0.1"}, "delivery": {"sender_process": False}}, None),
    ({"email": {"smtp_host": "127.0.0.1"}, "database_url": "sqlite://"}, None),
])
def test_serve_sends_mail_and_feeds_from_the_sender_process_when_it_can(
        tmp_path: Path, settings: dict[str, Any], expected: list[str] | None) -> None:
    from notifier.service.app import Service
    from tests.conftest import free_port

    data: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "bus": {"embedded_relay": False, "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "email": {"maildir": str(tmp_path / "Maildir")}}
    for key, value in settings.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    service = Service(config_from_dict(data))  # not started: no child yet
    try:
        local = {w.destination for w in service.dispatcher.workers}
        if expected is None:
            assert service.dispatcher.sender is None
            assert local == {"email", "rss"}
        else:
            assert service.dispatcher.sender is not None
            assert service.dispatcher.sender.destinations == expected
            assert local == {"email", "rss"} - set(expected)
    finally:
        service.close()


def test_the_old_email_sender_process_key_names_its_new_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'email.sender_process'.*'sender_process' in "
                                          r"\[delivery\] now"):
        config_from_dict({"email": {"sender_process": False}})
