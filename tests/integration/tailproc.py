"""Drive ``notifier-tail`` as a subprocess: wait until it listens, then read its lines."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from notifier.bus.publisher import Publisher
from tests.conftest import BIN, wait_for

PROBE_TOPIC = "probe"


class TailProcess:
    """A running ``notifier-tail``; its stdout lines are collected in a queue."""

    def __init__(self, *args: str, config: Path):
        self.proc = subprocess.Popen(
            [str(BIN / "notifier-tail"), *args, "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_ready(self, publisher: Publisher, modname: str = "t", timeout: float = 10) -> None:
        """Publish probes until the tail prints one (:meth:`take` skips probe lines)."""
        def printed() -> bool:
            publisher.publish(PROBE_TOPIC, {"probe": True}, modname=modname)
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                return False
            if PROBE_TOPIC not in line:
                raise AssertionError(f"unexpected line while waiting for a probe: {line}")
            return True

        wait_for(printed, "notifier-tail to print a probe", timeout, interval=0)

    def take(self, n: int, timeout: float = 10) -> list[str]:
        """The next ``n`` lines, failing if they do not come in time."""
        out, deadline = [], time.monotonic() + timeout
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(out)} of {n} lines: {out}; "
                                     f"stderr: {self.stop()[1]}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if PROBE_TOPIC not in line:
                out.append(line)
        return out

    def take_json(self, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.take(n, timeout)]

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()
