"""One ``notifier serve`` per SQLite database.

A service owns every row of its SQLite database: at start it takes back
every claim (:meth:`~notifier.storage.outbox.Outbox.release_claims`), which
would free a running service's in-flight work and let mail go out twice. So
before it touches the database, ``notifier serve`` takes :class:`ServiceLock`:
an exclusive ``flock(2)`` on ``<database>-serve.lock`` beside the file, held
for as long as the service runs (the kernel lets go when the process dies,
even on ``kill -9``), with the holder's pid written inside so that a second
service can say which process holds it.

PostgreSQL deployments may run several workers on one database; that is
their business, and there is no lock (nor for a private in-memory database).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..errors import ServiceError
from .engine import sqlite_path


class ServiceLock:
    """The lock for the database at ``url`` (a no-op for anything but a SQLite file)."""

    def __init__(self, url: str):
        try:
            database = sqlite_path(make_url(url))
        except ArgumentError:
            database = None  # opening the store reports the malformed URL
        self.database = database
        self.path: Path | None = None
        if database is not None:
            self.path = database.with_name(database.name + "-serve.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`ServiceError` naming the process that holds it."""
        if self.path is None or self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ServiceError(f"cannot open the service lock {self.path}: "
                               f"{exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ServiceError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
            who = f"process {holder}" if holder else "another process"
            raise ServiceError(
                f"another notifier serve ({who}) runs on the database {self.database}; "
                f"one service per SQLite database (lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go (the file stays: removing it would race with the next service)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
