"""Run ``notifier serve`` as a subprocess, and write configs for it."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

from tests.conftest import BIN, wait_for


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """Write a config dict (top-level keys, then one level of tables) as TOML."""
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, values in data.items():
        if isinstance(values, dict):
            lines.append(f"\n[{table}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def merge(*configs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for config in configs:
        for key, value in config.items():
            if isinstance(value, dict):
                out.setdefault(key, {}).update(value)
            else:
                out[key] = value
    return out


class ServeProcess:
    """``notifier serve --config C``, its log in ``log_path``."""

    def __init__(self, config: Path, http: str, log_path: Path, args: tuple[str, ...] = ()):
        self.config = config
        self.http = http
        self.log_path = log_path
        #: more arguments to ``notifier serve`` (``--role deliver``)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20, new_session: bool = False) -> ServeProcess:
        """Start it and wait for /healthz; ``new_session``: in a process group of its own,
        as systemd runs a service."""
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([str(BIN / "notifier"), "serve", "--config",
                                          str(self.config), *self.args],
                                         stdout=log, stderr=log,
                                         start_new_session=new_session)
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"notifier serve exited {proc.returncode}:\n" + self.log())
            try:
                with urllib.request.urlopen(f"http://{self.http}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, "notifier serve to answer /healthz with 200", timeout,
                 context=self.log, interval=0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, Message, bytes]:
        """Status, headers (looked up without regard to case) and body of ``GET path``."""
        request = urllib.request.Request(f"http://{self.http}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def metric(self, name: str) -> float:
        """The sum of every sample of ``name`` on /metrics."""
        _, _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def children(self) -> list[int]:
        """The live child processes of the running service (its SMTP sender, say)."""
        assert self.proc is not None
        pids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            try:
                pids += [int(pid) for pid in task.read_text().split()]
            except OSError:
                continue  # that thread ended meanwhile
        return pids

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
