"""Fixtures for integration tests: a database (SQLite and PostgreSQL), a throwaway PKI, an
SMTP server, watched subprocesses."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psycopg
import pytest

from notifier.storage import Store
from tests.conftest import BIN, require_service, wait_for
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.certs import Pki, make_pki

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
        yield s
        s.close()
        return
    require_service("PostgreSQL", 5432)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    s = Store(f"postgresql+psycopg://postgres@127.0.0.1:5432/test"
              f"?options=-csearch_path%3D{schema}")
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpPeer]:
    """A real SMTP server (aiosmtpd) on a loopback port, recording what it accepts."""
    peer = SmtpPeer(tmp_path)
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, its CRL, a signing certificate, a revoked one, a rogue CA and more (see certs.py)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


class Lines:
    """Collects the lines of a text stream in a thread, so tests can wait for one."""

    def __init__(self, stream: IO[str]):
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The first line matching ``predicate``, waiting up to ``timeout`` s; else None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._changed.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class Proc:
    """A running subprocess whose stdout and stderr are collected line by line."""

    def __init__(self, args: list[str], cwd: Path):
        exe = str(BIN / args[0]) if (BIN / args[0]).exists() else args[0]
        self.args = [exe, *args[1:]]
        self.popen = subprocess.Popen(self.args, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.stdout = Lines(self.popen.stdout)
        self.stderr = Lines(self.popen.stderr)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit (killing it after ``timeout`` s) and return its code."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.args[0]} still running after {timeout} s; "
                                 f"stdout: {self.stdout.text!r} stderr: {self.stderr.text!r}")\
                from None
        self.stdout.join(5)
        self.stderr.join(5)
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.stdout.join(5)
        self.stderr.join(5)

    def describe(self) -> str:
        return (f"{' '.join(self.args)} (exit {self.popen.poll()})\n"
                f"stdout:\n{self.stdout.text}\nstderr:\n{self.stderr.text}")


@pytest.fixture
def spawn() -> Iterator[Callable[..., Proc]]:
    """Start a subprocess (a console script from the virtualenv, or any program).

    ``spawn(*args, cwd=DIR)``; every process still running at the end of the
    test is terminated.
    """
    procs: list[Proc] = []

    def start(*args: str, cwd: Path) -> Proc:
        proc = Proc(list(args), cwd)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


def established_connections(port: int) -> int:
    """How many established TCP connections on loopback have ``port`` as the listening end."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                rows = fh.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def wait_for_connection(port: int, proc: Proc, timeout: float = 15.0, already: int = 0) -> None:
    """Wait until more than ``already`` clients are connected to ``port``; fail if ``proc`` dies."""
    def connected() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"exited before connecting to port {port}: {proc.describe()}")
        return established_connections(port) > already

    wait_for(connected, f"a client to connect to port {port}", timeout, context=proc.describe)
