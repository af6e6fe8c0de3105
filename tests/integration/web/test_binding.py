"""``notifier serve`` with an [http] listen it cannot use: one line naming key, file and value."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, free_port
from tests.integration.serveproc import write_toml

pytestmark = pytest.mark.integration


def serve(tmp_path: Path, listen: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    config = write_toml(tmp_path / "notifier.toml", {
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": listen},
        "email": {"maildir": str(tmp_path / "Maildir")}})
    result = subprocess.run([str(BIN / "notifier"), "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    return config, result


def assert_one_line(config: Path, result: subprocess.CompletedProcess[str], listen: str,
                    reason: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if str(config) in line]
    assert len(errors) == 1, result.stderr
    assert f"[http] listen = {listen!r}" in errors[0]
    assert reason in errors[0]


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        config, result = serve(tmp_path, listen)
    assert_one_line(config, result, listen, "in use")


@pytest.mark.parametrize("listen, reason", [
    ("localhost", "no port"),
    ("localhost:", "no port"),
    (":8080", "no host"),
    ("127.0.0.1:99999", "out of range"),
    ("::1:8080", "brackets"),
    ("no-such-host.invalid:8080", "cannot resolve host"),
    ("192.0.2.1:8080", "cannot listen there"),  # an address this machine does not have
])
def test_a_bad_listen_value(tmp_path: Path, listen: str, reason: str) -> None:
    config, result = serve(tmp_path, listen)
    assert_one_line(config, result, listen, reason)
