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

from notifier.errors import StorageError
from notifier.service.leader import Leader
from notifier.storage import Store
from tests.conftest import wait_for
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
    wait_for(lambda: first.failure is not None, "the first worker to notice", timeout=5)
    assert isinstance(first.failure, StorageError)
    assert "lost its lock" in str(first.failure)
    assert not first.part.running.is_set() and events == [True, False]
    wait_for(second.part.running.is_set, "the second worker to take the part over",
             timeout=5)
