"""The write lock: one writer at a time, between threads, lock objects and processes."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from notifier.storage import Store, writelock
from notifier.storage.writelock import NoLock, WriteLock, write_lock_for
from tests.conftest import wait_for

#: how long a test waits for something that should happen (generous: a loaded machine)
WAIT = 10.0
#: how long a test watches for something that should *not* happen
QUIET = 0.2


def flock_is_free(path: Path) -> bool:
    """Whether an exclusive flock of ``path`` can be taken now, on a file descriptor of its own."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


class Holder:
    """A thread that holds ``lock`` from ``entered`` until it is told to ``leave``."""

    def __init__(self, lock: WriteLock | NoLock, log: list[str], name: str):
        self.entered = threading.Event()
        self.leave = threading.Event()
        self.error: BaseException | None = None
        self._lock, self._log, self._name = lock, log, name
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self._lock:
                self._log.append(f"{self._name} in")
                self.entered.set()
                assert self.leave.wait(WAIT), "never told to leave"
                self._log.append(f"{self._name} out")
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.entered.set()

    def start(self) -> Holder:
        self.thread.start()
        return self

    def join(self) -> None:
        self.leave.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def assert_excludes(first: WriteLock, second: WriteLock) -> None:
    """While a thread holds ``first``, a thread entering ``second`` waits until it lets go."""
    log: list[str] = []
    a = Holder(first, log, "A").start()
    assert a.entered.wait(WAIT)
    b = Holder(second, log, "B").start()
    # B is blocked: it does not get in while A holds the lock.
    assert not b.entered.wait(QUIET)
    assert log == ["A in"]
    a.join()
    assert b.entered.wait(WAIT), "B never got the lock after A let go"
    b.join()
    assert log == ["A in", "A out", "B in", "B out"]


def test_lock_file_is_beside_the_database(tmp_path: Path) -> None:
    lock = write_lock_for(make_url(f"sqlite:///{tmp_path / 'notifier.db'}"))
    assert isinstance(lock, WriteLock)
    assert lock.path == tmp_path / "notifier.db-lock"
    assert not lock.path.exists()  # created on first use
    with lock:
        assert lock.path.is_file()
    lock.close()


def test_postgresql_gets_a_lock_that_does_nothing(tmp_path: Path) -> None:
    lock = write_lock_for(make_url("postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    assert isinstance(lock, NoLock)
    assert lock.path is None
    # Nothing is queued on: two threads are inside at once, and nesting does not deadlock.
    log: list[str] = []
    a = Holder(lock, log, "A").start()
    assert a.entered.wait(WAIT)
    b = Holder(lock, log, "B").start()
    assert b.entered.wait(WAIT), "NoLock made a second writer wait"
    with lock, lock:
        pass
    a.join()
    b.join()
    assert sorted(log[:2]) == ["A in", "B in"]
    assert not (tmp_path / "notifier.db-lock").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_memory_database_gets_a_lock_between_threads_only(url: str) -> None:
    # The module says a memory database "keeps only the lock between threads":
    # a WriteLock without a file, not a NoLock.
    lock = write_lock_for(make_url(url))
    assert isinstance(lock, WriteLock)
    assert lock.path is None
    with lock:
        assert lock._fd is None  # no file was opened
    assert_excludes(lock, lock)
    lock.close()


def test_one_lock_excludes_threads(tmp_path: Path) -> None:
    lock = WriteLock(tmp_path / "db-lock")
    assert_excludes(lock, lock)
    lock.close()


def test_two_locks_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    # Two Stores (or two processes) on one database: each has its own lock
    # object and file descriptor; only the flock orders them.
    a, b = WriteLock(tmp_path / "db-lock"), WriteLock(tmp_path / "db-lock")
    assert_excludes(a, b)
    assert_excludes(b, a)
    a.close()
    b.close()


def test_locks_on_different_files_do_not_wait_for_each_other(tmp_path: Path) -> None:
    a, b = WriteLock(tmp_path / "one-lock"), WriteLock(tmp_path / "two-lock")
    log: list[str] = []
    holder = Holder(a, log, "A").start()
    assert holder.entered.wait(WAIT)
    with b:
        log.append("B in")
    holder.join()
    assert log == ["A in", "B in", "A out"]
    a.close()
    b.close()


def test_flock_is_held_exactly_for_the_with_block(tmp_path: Path) -> None:
    path = tmp_path / "db-lock"
    lock = WriteLock(path)
    with lock:
        assert not flock_is_free(path)
    assert flock_is_free(path)
    with pytest.raises(RuntimeError, match="boom"), lock:
        assert not flock_is_free(path)
        raise RuntimeError("boom")
    # An exception inside the block lets go of both locks.
    assert flock_is_free(path)
    assert lock._threads.acquire(blocking=False)
    lock._threads.release()
    lock.close()


def test_close_forgets_the_file_and_the_next_use_opens_it_again(tmp_path: Path) -> None:
    path = tmp_path / "db-lock"
    lock = WriteLock(path)
    with lock:
        pass
    lock.close()
    assert lock._fd is None
    path.unlink()
    with lock:
        assert path.is_file()
        assert not flock_is_free(path)
    lock.close()
    lock.close()  # twice is fine


def test_lock_file_that_cannot_be_made_still_excludes_threads(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "missing" / "db-lock"
    lock = WriteLock(path)
    with caplog.at_level(logging.WARNING, logger="notifier.storage.writelock"), lock:
        pass
    assert any(str(path) in r.getMessage() for r in caplog.records), caplog.text
    assert not path.parent.exists()
    caplog.clear()
    assert_excludes(lock, lock)
    assert caplog.records == []  # warned once, not on every write
    lock.close()


# -- another process ---------------------------------------------------------

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_UN)
print("unlocked", flush=True)
"""

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free")
"""


def probe(path: Path) -> str:
    """Whether another process finds the flock of ``path`` held or free."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                          text=True, timeout=WAIT, check=True)
    return done.stdout.strip()


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process that holds the flock of ``path`` until its stdin gets a line."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(WAIT)


def let_go(child: subprocess.Popen[str]) -> None:
    """Have a :func:`held_by_another_process` child release the flock, and wait until it has."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "unlocked"


@pytest.mark.integration
def test_another_process_sees_the_lock_held(tmp_path: Path) -> None:
    path = tmp_path / "db-lock"
    lock = WriteLock(path)
    with lock:
        assert probe(path) == "held"
    assert probe(path) == "free"
    lock.close()


@pytest.mark.integration
def test_lock_waits_for_another_process(tmp_path: Path) -> None:
    path = tmp_path / "db-lock"
    lock = WriteLock(path)
    log: list[str] = []
    with held_by_another_process(path) as child:
        holder = Holder(lock, log, "here").start()
        assert not holder.entered.wait(QUIET), "entered while another process held the lock"
        assert log == []
        let_go(child)
        assert holder.entered.wait(WAIT), "never got the lock after the other process let go"
        holder.join()
    assert log == ["here in", "here out"]
    lock.close()


@pytest.mark.integration
def test_store_writes_wait_for_another_process_holding_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "notifier.db"
    with Store(f"sqlite:///{database}") as store:
        assert isinstance(store.write_lock, WriteLock)
        assert store.write_lock.path == tmp_path / "notifier.db-lock"
        done = threading.Event()
        errors: list[BaseException] = []

        def write() -> None:
            try:
                store.import_users([{"name": "alice"}])
            except BaseException as exc:
                errors.append(exc)
            done.set()

        with held_by_another_process(tmp_path / "notifier.db-lock") as child:
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            assert not done.wait(QUIET), "the write did not wait for the other process"
            assert store.get_user("alice") is None  # reads do not take the lock
            let_go(child)
            assert done.wait(WAIT)
            writer.join(WAIT)
        assert errors == []
        assert store.get_user("alice") is not None


def test_a_file_system_without_locks_falls_back_to_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # No such file system here (ENOLCK comes from some network mounts): flock is made to
    # fail as it would there.
    import errno

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    lock = WriteLock(tmp_path / "n.db-lock")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level(logging.WARNING, logger="notifier.storage.writelock"), lock:
        assert lock._threads.locked()
    assert "cannot lock" in caplog.text
    assert not lock._threads.locked()
    with lock:  # later uses go on between threads, without the file
        assert lock._fd is None
    lock.close()


@pytest.mark.integration
def test_a_long_wait_for_another_process_is_logged_naming_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    # A stopped command holding the lock would stall every write without a word.
    monkeypatch.setattr(writelock, "WARN_AFTER", 0.4)
    caplog.set_level(logging.WARNING, logger="notifier.storage.writelock")
    path = tmp_path / "db-lock"
    lock = WatchedLock(path)
    log: list[str] = []
    with held_by_another_process(path) as child:
        holder = Holder(lock, log, "here").start()
        wait_for(lambda: caplog.records, "a warning about the wait", WAIT)
        assert not holder.entered.is_set()
        (record,) = caplog.records[:1]
        assert str(path) in record.getMessage()
        assert "another process holds" in record.getMessage()
        let_go(child)
        assert holder.entered.wait(WAIT)
        holder.join()
    assert log == ["here in", "here out"]
    warnings = len(caplog.records)
    # The watch thread looks again, several times, and finds no wait to warn about.
    looked = lock.idle_looks
    wait_for(lambda: lock.idle_looks >= looked + 3, "the watch thread to look three times", WAIT)
    assert len(caplog.records) == warnings  # not waiting any more: no more warnings
    lock.close()


class WatchedLock(WriteLock):
    """A WriteLock that counts how often its watch thread found no wait going on."""

    idle_looks = 0

    @property  # type: ignore[override]
    def _waiting_since(self) -> float | None:
        since = self.__dict__["_since"]
        if since is None and threading.current_thread().name.startswith("write-lock-watch"):
            self.idle_looks += 1
        return since

    @_waiting_since.setter
    def _waiting_since(self, value: float | None) -> None:
        self.__dict__["_since"] = value
