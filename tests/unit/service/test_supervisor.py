"""The supervisor: restarts with backoff, counts, gives up, and tells live and ready health."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from notifier.errors import StorageError
from notifier.service.supervisor import SimplePart, Supervisor
from tests.conftest import wait_for


class Flaky:
    """A part that works (counting its turns) until told to fail: then it fails on every run
    while ``fail`` is set, or once for each time ``fail_once`` is set."""

    def __init__(self, name: str = "flaky", error: BaseException | None = None):
        self.name = name
        self.error = error or RuntimeError("boom")
        self.fail = threading.Event()
        self.fail_once = threading.Event()
        self.runs = 0
        self.turns = 0
        self.stall: str | None = None

    def run(self, stopping: threading.Event) -> None:
        self.runs += 1
        while not stopping.wait(0.002):
            if self.fail.is_set():
                raise self.error
            if self.fail_once.is_set():
                self.fail_once.clear()
                raise self.error
            self.turns += 1

    def stalled(self) -> str | None:
        return self.stall


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for supervisor in made:
        supervisor.stop(timeout=5)


def make(supervisors: list[Supervisor], *parts: object, **kw: object) -> tuple[
        Supervisor, list[str], list[str]]:
    restarts: list[str] = []
    gave_up: list[str] = []
    settings = {"backoff_base": 0.05, "backoff_cap": 0.05, **kw}
    supervisor = Supervisor(on_restart=restarts.append, on_give_up=gave_up.append,
                            **settings)  # type: ignore[arg-type]
    for part in parts:
        supervisor.add(part)  # type: ignore[arg-type]
    supervisors.append(supervisor)
    return supervisor, restarts, gave_up


def test_a_failing_part_is_logged_counted_and_restarted_and_health_follows(
        supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture) -> None:
    flaky, steady = Flaky(), Flaky("steady")
    supervisor, restarts, gave_up = make(supervisors, flaky, steady, backoff_base=1.0,
                                         backoff_cap=1.0)
    supervisor.start()
    wait_for(lambda: flaky.turns > 0, "the part to run")
    assert supervisor.health("ready")[0] is True
    flaky.fail_once.set()
    wait_for(lambda: restarts, "the failure to be counted")
    # In its backoff the part is down: not ready (naming it), still live.
    ok, report = supervisor.health("ready")
    assert not ok and report["status"] == "degraded"
    assert list(report["failing"]) == ["flaky"]
    assert "RuntimeError: boom" in report["failing"]["flaky"]
    assert "restarting in" in report["failing"]["flaky"]
    assert supervisor.health("live")[0] is True
    wait_for(lambda: flaky.runs >= 2 and supervisor.health("ready")[0], "ready again")
    assert restarts == ["flaky"] and gave_up == []
    assert supervisor.health("ready")[1]["parts"]["flaky"]["restarts"] == 1
    assert steady.runs == 1  # the others were never touched
    failures = [r for r in caplog.records if r.name == "notifier.service.supervisor"
                and r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "flaky failed (RuntimeError: boom); starting it again in" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # a bug: with its traceback


def test_a_notifier_error_is_logged_without_a_traceback(
        supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky(error=StorageError("sqlite:///x.db: cannot read: disk I/O error"))
    supervisor, restarts, _ = make(supervisors, flaky)
    supervisor.start()
    flaky.fail_once.set()
    wait_for(lambda: restarts, "the failure to be counted")
    (record,) = [r for r in caplog.records if r.name == "notifier.service.supervisor"]
    assert "disk I/O error" in record.getMessage() and record.exc_info is None


def test_a_part_returning_unasked_is_restarted(supervisors: list[Supervisor]) -> None:
    returned = threading.Event()

    def run(stopping: threading.Event) -> None:
        if not returned.is_set():
            returned.set()
            return
        stopping.wait()

    supervisor, restarts, _ = make(supervisors, SimplePart("quitter", run))
    supervisor.start()
    wait_for(lambda: restarts, "the early return to count as a failure")
    assert "returned although nobody asked" in \
        supervisor.health("ready")[1]["parts"]["quitter"]["last_error"]
    wait_for(lambda: supervisor.health("ready")[0], "ready again")


def test_a_part_that_keeps_failing_is_given_up_on_once(
        supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture) -> None:
    flaky, steady = Flaky(), Flaky("steady")
    flaky.fail.set()
    supervisor, restarts, gave_up = make(supervisors, flaky, steady, max_restarts=3,
                                         backoff_base=0.01, backoff_cap=0.01)
    supervisor.start()
    wait_for(lambda: gave_up, "the supervisor to give up")
    assert gave_up == ["flaky"] and supervisor.gave_up == "flaky"
    assert restarts == ["flaky"] * 4  # three restarts allowed; the fourth failure ends it
    assert flaky.runs == 4
    live, report = supervisor.health("live")
    assert not live and report["status"] == "failed"
    assert "failed 4 times" in report["failing"]["flaky"]
    assert supervisor.health("ready")[0] is False
    assert [r.levelno for r in caplog.records if "giving up" in r.getMessage()] == \
        [logging.CRITICAL]
    # Its thread, the only one that could start it again, has ended.
    thread = supervisor._slots["flaky"].thread
    assert thread is not None
    wait_for(lambda: not thread.is_alive(), "the part's thread to end")
    assert flaky.runs == 4  # never started again


def test_failures_long_ago_do_not_count_against_the_budget(
        supervisors: list[Supervisor]) -> None:
    now = [1000.0]
    flaky = Flaky()
    supervisor, restarts, gave_up = make(supervisors, flaky, max_restarts=1, window=60.0,
                                         backoff_base=0.01, backoff_cap=0.01,
                                         clock=lambda: now[0])
    supervisor.start()
    for n in range(3):
        wait_for(lambda n=n: flaky.turns > 0 and flaky.runs == n + 1, f"run {n + 1}")
        flaky.fail_once.set()
        wait_for(lambda n=n: len(restarts) == n + 1, f"failure {n + 1}")
        now[0] += 61.0  # the window moves past each failure
        flaky.turns = 0
    wait_for(lambda: flaky.runs == 4, "the fourth run")
    assert gave_up == []


def test_a_stalled_part_is_not_ready_and_names_why(supervisors: list[Supervisor]) -> None:
    part = Flaky("ingest")
    supervisor, _, _ = make(supervisors, part)
    supervisor.start()
    wait_for(lambda: part.turns > 0, "the part to run")
    part.stall = "has not taken a message off the bus for 31 s"
    ok, report = supervisor.health("ready")
    assert not ok and report["failing"] == {
        "ingest": "stalled: has not taken a message off the bus for 31 s"}
    assert report["parts"]["ingest"]["stalled"].startswith("has not taken")
    assert supervisor.health("live")[0] is True  # not for long enough to restart it all
    part.stall = None
    assert supervisor.health("ready")[0] is True


def test_a_part_that_is_not_ready_yet_counts_as_starting(
        supervisors: list[Supervisor]) -> None:
    part = Flaky("sender")
    part.ready = False  # type: ignore[attr-defined]
    supervisor, _, _ = make(supervisors, part)
    assert supervisor.health("ready")[1]["status"] == "starting"  # not started at all
    supervisor.start()
    wait_for(lambda: part.turns > 0, "the part to run")
    ok, report = supervisor.health("ready")
    assert not ok and report == {**report, "status": "starting",
                                 "failing": {"sender": "starting"}}
    part.ready = True  # type: ignore[attr-defined]
    assert supervisor.health("ready") == (True, {**report, "status": "ok", "failing": {}})


def test_restarting_often_counts_as_not_ready_until_it_settles(
        supervisors: list[Supervisor]) -> None:
    now = [1000.0]
    flaky = Flaky()
    supervisor, restarts, _ = make(supervisors, flaky, window=60.0, backoff_base=0.01,
                                   backoff_cap=0.01, clock=lambda: now[0])
    supervisor.start()
    for n in range(3):
        wait_for(lambda n=n: flaky.runs == n + 1 and flaky.turns > 0, f"run {n + 1}")
        flaky.fail_once.set()
        wait_for(lambda n=n: len(restarts) == n + 1, f"failure {n + 1}")
        flaky.turns = 0
    wait_for(lambda: flaky.runs == 4 and flaky.turns > 0, "the fourth run")
    ok, report = supervisor.health("ready")
    assert not ok and report["failing"]["flaky"].startswith("restarted 3 times within 60 s")
    now[0] += 61.0
    assert supervisor.health("ready")[0] is True


def test_stop_ends_a_backoff_and_stops_the_others_interrupting_them(
        supervisors: list[Supervisor]) -> None:
    flaky = Flaky()
    waiting = threading.Event()
    interrupted = threading.Event()

    def run(stopping: threading.Event) -> None:
        waiting.set()
        interrupted.wait()  # a wait that does not look at stopping: interrupt() ends it

    supervisor, restarts, _ = make(supervisors, flaky,
                                   SimplePart("blind", run, interrupt=interrupted.set),
                                   backoff_base=60.0, backoff_cap=60.0)
    supervisor.start()
    wait_for(waiting.is_set, "the blind part to run")
    flaky.fail.set()
    wait_for(lambda: restarts, "the failure")  # now in a 30-60 s backoff
    started = time.monotonic()
    assert supervisor.stop(timeout=5) == []
    assert time.monotonic() - started < 5
    ok, report = supervisor.health("ready")
    assert not ok and report["status"] == "stopping"
    assert {p["state"] for p in report["parts"].values()} == {"stopped"}
    assert flaky.runs == 1


def test_a_failure_while_stopping_is_logged_not_restarted(
        supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture) -> None:
    def run(stopping: threading.Event) -> None:
        stopping.wait()
        raise RuntimeError("while draining")

    supervisor, restarts, _ = make(supervisors, SimplePart("drainer", run))
    supervisor.start()
    supervisor.stop(timeout=5)
    assert restarts == []
    assert any("drainer failed while stopping" in r.getMessage() and r.exc_info
               for r in caplog.records)


def test_a_stalled_check_that_raises_still_answers(supervisors: list[Supervisor]) -> None:
    def stalled() -> str | None:
        raise KeyError("oops")

    supervisor, _, _ = make(supervisors, SimplePart("odd", lambda s: s.wait(), stalled))
    supervisor.start()
    wait_for(lambda: supervisor.health("live")[1]["parts"]["odd"]["state"] == "running",
             "the part to run")
    ok, report = supervisor.health("ready")
    assert not ok and "KeyError" in report["failing"]["odd"]


def test_health_kinds_are_checked(supervisors: list[Supervisor]) -> None:
    supervisor, _, _ = make(supervisors)
    with pytest.raises(ValueError, match="'live' or 'ready'"):
        supervisor.health("alive")


def test_a_part_ending_while_the_service_stops_but_before_its_turn_is_not_restarted(
        supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture) -> None:
    early, late = Flaky("early"), Flaky("late")
    supervisor, restarts, _gave_up = make(supervisors, early, late)
    supervisor.start()
    wait_for(lambda: early.turns > 0 and late.turns > 0, "both parts to run")
    supervisor.stop(["early"], timeout=5)  # the service's stop has begun: early's turn
    late.fail.set()  # late ends on its own before its turn (a child leaving on SIGTERM)
    wait_for(lambda: supervisor.health("live")[1]["parts"]["late"]["state"] == "stopped",
             "late to count as stopped")
    assert late.runs == 1 and restarts == []
    (record,) = [r for r in caplog.records if "late" in r.getMessage()]
    assert record.levelno == logging.WARNING and "before its turn to stop" in record.getMessage()
