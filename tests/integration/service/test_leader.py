"""Parts that run once among all workers: held through a PostgreSQL advisory lock.

Two :class:`Leader` wrappers on one database stand for two workers: one runs
the part, the other stands by and takes over when the first lets go, dies
(its connection closes) or has its session terminated by the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from notifier.service.leader import Leader
from notifier.storage import Store
from tests.conftest import free_port, wait_for
from tests.integration.conftest import PG

pytestmark = pytest.mark.integration


class Counting:
    """A part that says whether it runs, until told to stop."""

    name = "digests"

    def __init__(self) -> None:
        self.running = threading.Event()
        self.runs = 0

    def run(self, stopping: threading.Event) -> None:
        self.runs += 1
        self.running.set()
        try:
            stopping.wait()
        finally:
            self.running.clear()


class Worker:
    """A leader in a thread of its own, as the supervisor runs it; ``failure`` if it raised."""

    def __init__(self, store: Store, on_lead: list[bool] | None = None):
        self.part = Counting()
        self.leader = Leader(self.part, store, retry=0.1, check=0.1,
                             on_lead=on_lead.append if on_lead is not None else None)
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.leader.run(self.stopping)
        except BaseException as exc:
            self.failure = exc

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def workers(store: Store) -> Iterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for worker in made:
        worker.stopping.set()
    for worker in made:
        worker.thread.join(10)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_on_sqlite_the_part_always_runs(store: Store, workers: list[Worker]) -> None:
    events: list[bool] = []
    workers.append(Worker(store, events))
    wait_for(workers[0].part.running.is_set, "the part to run")
    assert workers[0].leader.leading and events == [True]
    workers[0].stop()
    assert not workers[0].leader.leading and events == [True, False]
    assert workers[0].failure is None


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_one_worker_runs_the_part_and_the_other_takes_over(store: Store,
                                                           workers: list[Worker]) -> None:
    first = Worker(store)
    workers.append(first)
    wait_for(first.part.running.is_set, "the first worker to run the part")
    second = Worker(store)
    workers.append(second)
    # The second competes for the lock for a while and stands by, ready, never running it.
    for _ in range(5):
        assert not second.part.running.wait(0.1)
    assert not second.leader.leading and second.leader.ready
    assert second.leader.stalled() is None
    first.stop()
    assert first.failure is None and not first.leader.leading
    wait_for(second.part.running.is_set, "the second worker to take the part over",
             timeout=5)
    assert second.leader.leading and second.part.runs == 1


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_session_terminated_by_the_server_stops_the_part_and_it_moves(
        store: Store, workers: list[Worker]) -> None:
    events: list[bool] = []
    first = Worker(store, events)
    workers.append(first)
    wait_for(first.part.running.is_set, "the first worker to run the part")
    second = Worker(store)
    workers.append(second)
    with psycopg.connect(PG, autocommit=True) as admin:
        # The session holding the lock: the one whose advisory lock is on this schema's key.
        holders = admin.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int = "
            "hashtext(current_database() || '/' || %s) AND l.objid::int = hashtext(%s)",
            (store.url.split("search_path%3D", 1)[1], "notifier:digests")).fetchall()
        assert len(holders) == 1
        admin.execute("SELECT pg_terminate_backend(%s)", holders[0])
    # The part stops where the lock was lost, and runs again in one worker: this one,
    # competing again, or the other.
    wait_for(lambda: events[:2] == [True, False], "the first worker to stop the part",
             timeout=5)
    wait_for(lambda: first.part.runs + second.part.runs == 2, "the part to run again",
             timeout=5)
    assert [first.leader.leading, second.leader.leading].count(True) == 1
    assert first.failure is None and first.thread.is_alive()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_database_away_is_waited_for_and_said(store: Store, workers: list[Worker]) -> None:
    away = Store(store.url.replace("127.0.0.1:5432", f"127.0.0.1:{free_port()}"),
                 create=False)
    try:
        worker = Worker(away)
        workers.append(worker)
        wait_for(worker.leader.stalled, "the leader to say why it waits", timeout=5)
        assert "cannot take its lock" in str(worker.leader.stalled())
        assert worker.thread.is_alive() and worker.failure is None
        assert not worker.part.running.is_set()
        worker.stop()
    finally:
        away.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_standing_by_tries_the_lock_on_one_session_not_a_new_one_each_time(
        store: Store, workers: list[Worker]) -> None:
    first = Worker(store)
    workers.append(first)
    wait_for(first.part.running.is_set, "the first worker to run the part")
    app = f"standby-{free_port()}"
    other = Store(f"{store.url}&application_name={app}", create=False)
    try:
        second = Worker(other)
        workers.append(second)
        seen: set[tuple[int, object]] = set()
        with psycopg.connect(PG, autocommit=True) as admin:
            # About 15 tries (one each 0.1 s): a session opened for each would show here.
            for _ in range(75):
                seen.update(admin.execute(
                    "SELECT pid, backend_start FROM pg_stat_activity "
                    "WHERE application_name = %s", (app,)).fetchall())
                second.stopping.wait(0.02)
        assert not second.leader.leading and second.leader.ready
        assert len(seen) == 1, seen
        second.stop()
    finally:
        other.close()
