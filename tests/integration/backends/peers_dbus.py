"""A real D-Bus peer: a private session bus with a notification server on it.

:class:`DbusSession` starts a private ``dbus-daemon --session`` and python-dbusmock's
``notification_daemon`` template on that bus, reads back every ``Notify``
call the server got and can emit signals from it, as a notification server
does when the user clicks. :class:`DesktopPeer` wraps it for the backend
contract suite (see contract.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dbus
import dbus.bus

from notifier.config import DbusConfig
from tests.conftest import poll, wait_for

from .contract import BasePeer, Delivered
from .peers_irc import require_program

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"
MOCK_INTERFACE = "org.freedesktop.DBus.Mock"
ENV = "DBUS_SESSION_BUS_ADDRESS"

#: a session bus without service activation: a name nobody owns stays unowned (Debian's
#: dunst installs an activation file for org.freedesktop.Notifications, which would
#: start a dunst without a screen whenever the test's daemon is stopped)
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


NOTIFY_FIELDS = ("app_name", "replaces_id", "app_icon", "summary", "body", "actions", "hints",
                 "expire_timeout")


def _plain(value: Any) -> Any:
    """dbus-python values as plain Python ones."""
    if isinstance(value, dbus.Dictionary | dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, dbus.Array | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dbus.String | str):
        return str(value)
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    return value


class DbusSession:
    """A private session bus and dbusmock's notification server, both our own processes.

    ``capabilities`` replaces the server's default capability list (which
    includes ``body-markup``).
    """

    def __init__(self, workdir: Path, capabilities: list[str] | None = None):
        self.workdir = workdir
        self.capabilities = capabilities
        self.address: str | None = None
        self.daemon: subprocess.Popen[str] | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self._client: dbus.bus.BusConnection | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self) -> DbusSession:
        require_program("dbus-daemon")  # Debian package dbus-daemon
        # --nofork keeps the daemon our child, so stop() can reap it: with
        # --fork it would be left to PID 1, which in a container may never
        # reap it.
        config = self.workdir / "bus.conf"
        config.write_text(BUS_CONFIG)
        self.daemon = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork",
                                        "--print-address=1"], stdout=subprocess.PIPE,
                                       stdin=subprocess.DEVNULL, text=True)
        assert self.daemon.stdout is not None
        try:
            self.address = self.daemon.stdout.readline().strip()
            if not self.address:
                raise RuntimeError("dbus-daemon printed no address")
            self.start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def start_server(self) -> None:
        """Start the notification server on the bus, and wait until it owns its name."""
        assert self.address is not None
        cmd = [sys.executable, "-m", "dbusmock", "--session", "-t", "notification_daemon",
               "-l", str(self.workdir / "notify.log")]
        if self.capabilities is not None:
            cmd += ["-p", json.dumps({"capabilities": " ".join(self.capabilities)})]
        with open(self.workdir / "dbusmock.out", "ab") as out:
            self.server = subprocess.Popen(cmd, env={**os.environ, ENV: self.address},
                                           stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL)
        server = self.server

        def owned() -> bool:
            if server.poll() is not None:
                raise RuntimeError(f"the notification server exited {server.returncode}; see "
                                   f"{self.workdir / 'dbusmock.out'}")
            return bool(self.client().name_has_owner(BUS_NAME))

        wait_for(owned, f"the notification server to own {BUS_NAME} (see "
                        f"{self.workdir / 'dbusmock.out'})", 10)

    def client(self) -> dbus.bus.BusConnection:
        """A connection of our own to the bus, to inspect the server."""
        if self._client is None:
            assert self.address is not None
            self._client = dbus.bus.BusConnection(self.address)
        return self._client

    def _mock(self, method: str, signature: str, *args: Any) -> Any:
        return self.client().call_blocking(BUS_NAME, OBJECT_PATH, MOCK_INTERFACE, method,
                                           signature, args, timeout=5)

    def notify_calls(self) -> list[dict[str, Any]]:
        """Every Notify call the server got, oldest first, as dicts of its arguments."""
        return [dict(zip(NOTIFY_FIELDS, _plain(args), strict=True))
                for _, args in self._mock("GetMethodCalls", "s", "Notify")]

    def emit(self, name: str, signature: str, *args: Any) -> None:
        """Make the server emit the signal ``name`` of the Notifications interface."""
        self._mock("EmitSignal", "sssav", INTERFACE, name, signature, list(args))

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        self.server = None

    def stop(self) -> None:
        """Stop the server and the bus; safe to call twice."""
        self.stop_server()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.daemon is not None:
            self.daemon.terminate()
            try:
                self.daemon.wait(5)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(5)
            if self.daemon.stdout is not None:
                self.daemon.stdout.close()
            self.daemon = None


#: whether the config has ``[dbus] address``, the way to point a backend at a bus
CONFIG_HAS_ADDRESS = "address" in {f.name for f in dataclasses.fields(DbusConfig)}


class DesktopPeer(BasePeer):
    """The desktop destination for the contract suite: one user's session bus.

    Until the configuration has ``[dbus] address``, the backend finds the bus
    through ``DBUS_SESSION_BUS_ADDRESS``, which this peer sets while it runs.
    """

    name = "desktop"
    id = "desktop"
    stoppable = True
    routes_by_address = False
    settle = 0.0
    user = "alice"

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.session = DbusSession(tmp_path / "dbus")
        self._seen = 0
        self._saved_env: str | None = None
        self._env_set = False

    def start(self) -> None:
        self.session.start()
        if not CONFIG_HAS_ADDRESS:
            self._saved_env, self._env_set = os.environ.get(ENV), True
            os.environ[ENV] = self.session.address or ""

    def stop(self) -> None:
        self.session.stop()
        if self._env_set:
            if self._saved_env is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = self._saved_env
            self._env_set = False

    def config(self) -> dict[str, Any]:
        table: dict[str, Any] = {"user": self.user, "app_name": "notifier-test",
                                 "expire_timeout": 8000}
        if CONFIG_HAS_ADDRESS:
            table["address"] = self.session.address
        return {"dbus": table}

    def address(self, user: str) -> str:
        return user

    def received(self, timeout: float) -> list[Delivered]:
        def new_calls() -> list[dict[str, Any]]:
            calls = self.session.notify_calls() if self.session.server is not None else []
            return calls[self._seen:]

        new = poll(new_calls, timeout)
        self._seen += len(new)
        return [Delivered(address=self.user, text=f"{c['summary']}\n{c['body']}", raw=c)
                for c in new]
