"""One writer at a time on a SQLite file, without SQLite's busy-wait sleeps.

SQLite lets one transaction write at a time. A connection that finds the
write lock taken waits in SQLite's busy handler, which polls: it sleeps 1,
2, 5, 10, then up to 100 ms between tries. Under load, with several threads
(the ingest, the delivery workers) writing, those sleeps dominate: a write
that could start a few microseconds later starts milliseconds later.

:class:`WriteLock` queues writers before they ask SQLite, so the busy
handler is never reached: threads of one :class:`~notifier.storage.Store`
queue on a :class:`threading.Lock`, and every process and ``Store`` using
the same database file queue on an exclusive ``flock(2)`` of a lock file
beside it (``<database>-lock``). Both wait in the kernel and wake as soon
as the holder lets go, however long that takes, so a write never fails for
being slow; a wait for another process longer than :data:`WARN_AFTER`
seconds is logged (and again every :data:`WARN_AFTER` seconds), naming the
lock file, since the holder may be a stopped command. For PostgreSQL,
which locks rows, there is nothing to queue on and :func:`write_lock_for`
gives a lock that does nothing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from .engine import is_memory, sqlite_path

log = logging.getLogger(__name__)

#: seconds of waiting for another process's write before saying so in the log
WARN_AFTER = 30.0


class WriteLock:
    """Exclusive for the length of a ``with`` block, across threads and processes.

    ``path`` is the lock file, created on first use; ``None`` (an in-memory
    database) keeps only the lock between threads. When the lock file
    cannot be created (a read-only directory), the lock still works between
    threads and SQLite's own busy handling covers other processes.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._no_file = path is None
        # time.monotonic() when the thread holding _threads began to wait for another
        # process, else None; read by the watch thread, started at the first such wait
        self._waiting_since: float | None = None
        self._watch: threading.Thread | None = None
        self._closed = threading.Event()  # ends the watch thread

    def __enter__(self) -> WriteLock:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                try:
                    self._flock(fd)
                except OSError as exc:
                    # A file system without locks (ENOLCK, some network mounts): as when
                    # the file cannot be made, SQLite's own busy handling covers the rest.
                    log.warning("cannot lock %s (%s); other processes' writes will be "
                                "waited for by polling", self.path, exc.strerror or exc)
                    self._drop_file()
        except BaseException:
            self._threads.release()
            raise
        return self

    def _flock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass  # another process is writing: wait for it, watched
        if self._watch is None:
            self._closed = threading.Event()
            self._watch = threading.Thread(target=self._watch_waits, args=(self._closed,),
                                           daemon=True, name=f"write-lock-watch {self.path}")
            self._watch.start()
        self._waiting_since = time.monotonic()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            self._waiting_since = None

    def _watch_waits(self, closed: threading.Event) -> None:
        """Log waits for another process's write that go on for over WARN_AFTER seconds."""
        warned_for: float | None = None
        next_warning = 0.0
        while not closed.wait(min(1.0, WARN_AFTER / 4)):
            since = self._waiting_since
            if since is None:
                continue
            waited = time.monotonic() - since
            if since != warned_for:
                warned_for, next_warning = since, WARN_AFTER
            if waited >= next_warning:
                log.warning("waiting %.0f s to write: another process holds %s (a stopped "
                            "notifier command?); nothing is written meanwhile",
                            waited, self.path)
                next_warning += WARN_AFTER

    def _drop_file(self) -> None:
        fd, self._fd = self._fd, None
        self._no_file = True
        if fd is not None:
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        if self._fd is None and not self._no_file:
            assert self.path is not None
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                # Not fatal: SQLite still serialises the writers, only more slowly.
                log.warning("cannot open the write lock %s (%s); other processes' writes "
                            "will be waited for by polling", self.path, exc.strerror or exc)
                self._no_file = True
        return self._fd

    def close(self) -> None:
        """Close the lock file; the next ``with`` opens it again."""
        with self._threads:
            self._closed.set()
            self._watch = None
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)


class NoLock:
    """What :func:`write_lock_for` gives a database that needs no queueing."""

    path = None

    def __enter__(self) -> NoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None


def write_lock_for(url: URL) -> Any:
    """The write lock for the database at ``url``."""
    if url.get_backend_name() != "sqlite":
        return NoLock()
    database = sqlite_path(url)
    if is_memory(url) or database is None:
        return WriteLock(None)
    return WriteLock(database.with_name(database.name + "-lock"))
