"""A part that cannot be kept up makes ``notifier serve`` stop everything and exit non-zero."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import notifier.service.supervisor as supervisor_module
from notifier.cli.serve import serve
from notifier.service.changes import ChangeWatcher
from tests.integration.service.test_serve_process import serve_config

pytestmark = pytest.mark.integration


@pytest.fixture
def restore_process_state() -> Iterator[None]:
    """serve sets signal handlers, the switch interval and freezes the collector: undo it."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    interval = sys.getswitchinterval()
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    sys.setswitchinterval(interval)
    gc.unfreeze()


def test_a_part_failing_too_often_stops_serve_with_exit_1_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        restore_process_state: None) -> None:
    monkeypatch.setattr(supervisor_module, "MAX_RESTARTS", 2)
    monkeypatch.setattr(supervisor_module, "BACKOFF_BASE", 0.05)
    monkeypatch.setattr(supervisor_module, "BACKOFF_CAP", 0.05)
    runs: list[threading.Thread] = []

    def broken(self: ChangeWatcher, stopping: threading.Event) -> None:
        runs.append(threading.current_thread())
        raise RuntimeError("the change log cannot be read, ever")

    monkeypatch.setattr(ChangeWatcher, "run", broken)
    caplog.set_level(logging.INFO)
    config = serve_config(tmp_path, "serve")
    result = CliRunner().invoke(serve, ["--config", str(config)])
    assert result.exit_code == 1, result.output
    assert len(runs) == 3  # two restarts allowed, the third failure ends it
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("changes failed 3 times within 300 s") and "giving up" in m
               for m in messages)
    assert "notifier serve exits: changes could not be kept up" in messages[-1]
    # Everything else was stopped cleanly, in order, before the exit.
    assert "stopping: draining what is in flight" in messages
    assert "stopped" in messages
    assert messages.index("stopped") < len(messages) - 1
