"""Shared fixtures: free ports, a config for the test's own bus, and the local services.

The services that run on this kind of machine (PostgreSQL, RabbitMQ) are used
for real. With CI=true a test that needs one fails when it is unreachable;
elsewhere it is skipped, with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from notifier.config import Config, config_from_dict

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() == "true"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    """Skip (or, in CI, fail) when the local ``name`` service is not listening."""
    if service_reachable("127.0.0.1", port):
        return
    message = f"{name} is not listening on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must run this test")
    pytest.skip(message)


@pytest.fixture
def bus_config(tmp_path: Path) -> Config:
    """A config whose relay listens on fresh loopback ports."""
    data = {"bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                    "endpoints": [f"tcp://127.0.0.1:{free_port()}"],
                    "publish_timeout": 5.0}}
    return config_from_dict(data, str(tmp_path / "notifier.toml"))


@pytest.fixture
def config_file(tmp_path: Path, bus_config: Config) -> Path:
    """``bus_config`` written as a TOML file, for the commands' ``--config``."""
    path = tmp_path / "notifier.toml"
    path.write_text(
        "[bus]\n"
        f'relay_inbound = "{bus_config.bus.relay_inbound}"\n'
        f'endpoints = ["{bus_config.bus.endpoints[0]}"]\n')
    return path


@pytest.fixture
def relay(bus_config: Config) -> Iterator[None]:
    """An in-process relay on ``bus_config``'s addresses."""
    from notifier.bus.relay import Relay

    r = Relay(bus_config.bus.relay_inbound, bus_config.bus.endpoints[0])
    thread = r.start_thread()
    yield
    r.stop()
    thread.join(5)


#: seconds a test waits, by default, for something that should happen (generous: the
#: machine may be loaded; a wait that succeeds returns as soon as it can)
WAIT = 30.0


def poll(predicate: Callable[[], T], timeout: float, interval: float = 0.02) -> T:
    """Call ``predicate`` until it returns something true or ``timeout`` s passed; return
    its last value (false when time ran out). For a wait that may end empty-handed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_for(predicate: Callable[[], T], what: str, timeout: float = WAIT, *,
             context: Callable[[], str] | None = None, interval: float = 0.02) -> T:
    """Call ``predicate`` until it returns something true, and return that; fail the test
    after ``timeout`` s, saying ``what`` was awaited (and ``context()``, a log say)."""
    value = poll(predicate, timeout, interval)
    if not value:
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}"
                    + (f"\n{context()}" if context is not None else ""))
    return value


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    wait_for(lambda: service_reachable("127.0.0.1", port),
             f"something to listen on 127.0.0.1:{port}", timeout, interval=0.05)


def run(*args: str, input: str | None = None, timeout: float = 30,
        cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run one of our console scripts (or any program) and capture its output."""
    exe = str(BIN / args[0]) if (BIN / args[0]).exists() else args[0]
    return subprocess.run([exe, *args[1:]], input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)
