"""Signals that come close together (systemd, ``timeout``, a second Ctrl-C) stop the
long-running commands as one does: they exit 0, and never hang."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, free_port, wait_for_port
from tests.integration.serveproc import ServeProcess
from tests.integration.service.test_serve_process import http_of, serve_config

pytestmark = pytest.mark.integration

#: processes sending SIGTERM at once, and how many each sends: before handlers that took
#: a lock, this hung serve in about 6 runs out of 10
KILLERS, BURST = 4, 200
#: services started and stopped so, in the serve test
TRIALS = 3


def burst(pid: int) -> None:
    """SIGTERMs from several processes at once, as systemd and a second Ctrl-C might send."""
    loop = f"for i in $(seq {BURST}); do kill -TERM {pid} 2>/dev/null || exit 0; done"
    killers = [subprocess.Popen(["bash", "-c", loop]) for _ in range(KILLERS)]
    for killer in killers:
        killer.wait(30)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_serve_stops_on_a_burst_of_sigterms(tmp_path: Path, trial: int) -> None:
    config = serve_config(tmp_path, "serve")
    serve = ServeProcess(config, http_of(config), tmp_path / "serve.log")
    serve.start()
    try:
        assert serve.proc is not None
        burst(serve.proc.pid)
        try:
            code = serve.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("serve hung after the SIGTERMs:\n" + serve.log()) from None
        assert code == 0, serve.log()
    finally:
        serve.ensure_stopped()
    assert "stopped" in serve.log()


def test_relay_stops_on_a_burst_of_sigterms(tmp_path: Path) -> None:
    inbound, outbound = free_port(), free_port()
    config = tmp_path / "relay.toml"
    config.write_text(f'[bus]\nrelay_inbound = "tcp://127.0.0.1:{inbound}"\n'
                      f'endpoints = ["tcp://127.0.0.1:{outbound}"]\n')
    relay = subprocess.Popen([str(BIN / "notifier"), "relay", "--config", str(config)],
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(inbound)
        burst(relay.pid)
        assert relay.wait(30) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(10)
