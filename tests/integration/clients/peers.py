"""Real peers of the desktop app, each a process of the test's own (stopped by its pid).

* :class:`PrivateBus`: ``dbus-daemon --session`` of its own;
* :class:`MockDaemon`: python-dbusmock's ``notification_daemon`` template, which
  records every call and emits signals on request (a click);
* :class:`Dunst`: Debian's ``dunst`` on an ``Xvfb`` screen, read back with ``dunstctl``;
* :class:`Watcher`: Debian's ``status-notifier-watcher``, the tray's registry;
* :class:`App`: ``notifier-desktop`` itself, with its own XDG folders and a
  ``$BROWSER`` that writes each address it is given to a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import dbus
import dbus.bus

from tests.conftest import BIN, wait_for
from tests.integration.backends.peers_dbus import BUS_CONFIG, _plain
from tests.integration.backends.peers_irc import require_program

NOTIFICATIONS = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
WATCHER = "org.kde.StatusNotifierWatcher"
DESKTOP = "org.fedoraproject.notifier.Desktop"
DESKTOP_PATH = "/org/fedoraproject/notifier/Desktop"
FIELDS = ("app_name", "replaces_id", "app_icon", "summary", "body", "actions", "hints",
          "expire_timeout")


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 5) -> None:
    """Terminate our own child ``proc`` and reap it (killed if it lingers)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class PrivateBus:
    """A session bus of the test's own; :meth:`client` is a connection to it."""

    def __init__(self, workdir: Path) -> None:
        require_program("dbus-daemon")
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "bus.conf"
        config.write_text(BUS_CONFIG)
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork",
                                      "--print-address=1"], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        assert self.address, "dbus-daemon printed no address"
        self._client: dbus.bus.BusConnection | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.address}

    def client(self) -> dbus.bus.BusConnection:
        if self._client is None:
            self._client = dbus.bus.BusConnection(self.address)
        return self._client

    def owned(self, name: str) -> bool:
        return bool(self.client().name_has_owner(name))

    def call(self, name: str, path: str, interface: str, method: str, signature: str = "",
             *args: Any) -> Any:
        return _plain(self.client().call_blocking(name, path, interface, method, signature,
                                                  list(args), timeout=10))

    def get(self, name: str, path: str, interface: str, prop: str) -> Any:
        return self.call(name, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                         interface, prop)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class MockDaemon:
    """dbusmock's notification daemon on ``bus``; what it was asked, and clicks."""

    def __init__(self, bus: PrivateBus, workdir: Path):
        self.bus = bus
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, capabilities: list[str] | None = None) -> MockDaemon:
        cmd = [sys.executable, "-m", "dbusmock", "--session", "-t", "notification_daemon"]
        if capabilities is not None:
            cmd += ["-p", json.dumps({"capabilities": " ".join(capabilities)})]
        with open(self.workdir / "dbusmock.out", "ab") as out:
            self.proc = subprocess.Popen(cmd, env=self.bus.env(), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.bus.owned(NOTIFICATIONS), "the mock daemon to own its name", 15)
        return self

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None
        wait_for(lambda: not self.bus.owned(NOTIFICATIONS), "the mock daemon to leave", 10)

    def calls(self) -> list[dict[str, Any]]:
        """Every Notify call, oldest first, as dicts of its arguments (with the id given)."""
        got = self.bus.call(NOTIFICATIONS, NOTIFICATIONS_PATH, "org.freedesktop.DBus.Mock",
                            "GetMethodCalls", "s", "Notify")
        return [dict(zip(FIELDS, args, strict=True)) for _, args in got]

    def emit(self, name: str, signature: str, *args: Any) -> None:
        self.bus.call(NOTIFICATIONS, NOTIFICATIONS_PATH, "org.freedesktop.DBus.Mock",
                      "EmitSignal", "sssav", NOTIFICATIONS, name, signature, list(args))

    def click(self, notification_id: int, action: str = "default") -> None:
        self.emit("ActionInvoked", "us", dbus.UInt32(notification_id), action)


class Watcher:
    """``status-notifier-watcher`` on ``bus``."""

    def __init__(self, bus: PrivateBus, workdir: Path):
        require_program("status-notifier-watcher")
        self.bus = bus
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Watcher:
        with open(self.workdir / "watcher.out", "ab") as out:
            self.proc = subprocess.Popen(["status-notifier-watcher"], env=self.bus.env(),
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_for(lambda: self.bus.owned(WATCHER), "the watcher to own its name", 15)
        return self

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None
        wait_for(lambda: not self.bus.owned(WATCHER), "the watcher to leave", 10)

    def items(self) -> list[str]:
        """The registered items; none while a watcher that has just taken its name has not
        exported its object yet (as the app, the test then asks again)."""
        try:
            return list(self.bus.get(WATCHER, "/StatusNotifierWatcher", WATCHER,
                                     "RegisteredStatusNotifierItems"))
        except dbus.exceptions.DBusException as exc:
            if exc.get_dbus_name() in ("org.freedesktop.DBus.Error.UnknownObject",
                                       "org.freedesktop.DBus.Error.UnknownMethod",
                                       "org.freedesktop.DBus.Error.ServiceUnknown"):
                return []
            raise


class Dunst:
    """``Xvfb`` on a free display and ``dunst`` on it and on ``bus``."""

    def __init__(self, bus: PrivateBus, workdir: Path):
        for program in ("Xvfb", "dunst", "dunstctl", "xwd"):
            require_program(program)
        self.bus = bus
        self.workdir = workdir
        read, write = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0",
                                      "800x600x24", "-nolisten", "tcp"], pass_fds=(write,),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as displayfd:
            self.display = ":" + displayfd.readline().strip()
        config = workdir / "dunstrc"
        config.write_text("[global]\nfont = Monospace 10\ngeometry = \"400x5-10+10\"\n"
                          "width = 400\norigin = top-right\noffset = 10x10\n"
                          "frame_width = 2\nmarkup = full\nformat = \"<b>%a</b>: %s\\n%b\"\n"
                          "[urgency_normal]\nbackground = \"#1f3b64\"\nforeground = \"#ffffff\"\n"
                          "timeout = 0\n[urgency_critical]\nbackground = \"#7a1d1d\"\n"
                          "foreground = \"#ffffff\"\ntimeout = 0\n"
                          "[urgency_low]\ntimeout = 0\n")
        with open(workdir / "dunst.out", "ab") as out:
            self.proc = subprocess.Popen(["dunst", "-config", str(config)],
                                         env={**bus.env(), "DISPLAY": self.display},
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_for(lambda: bus.owned(NOTIFICATIONS), "dunst to own its name", 15)

    def ctl(self, *args: str) -> str:
        result = subprocess.run(["dunstctl", *args], env={**self.bus.env(),
                                                          "DISPLAY": self.display},
                                capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def displayed(self) -> int:
        return int(self.ctl("count", "displayed").strip() or 0)

    def history(self) -> list[dict[str, Any]]:
        """``dunstctl history``: the notifications closed so far, newest first."""
        data = json.loads(self.ctl("history"))
        return [{key: value.get("data") for key, value in entry.items()}
                for entry in data["data"][0]]

    def screenshot(self, path: Path) -> bytes:
        """Save the whole screen as a PNG at ``path``; its RGB rows (each led by a 0)."""
        raw = subprocess.run(["xwd", "-root", "-silent", "-display", self.display],
                             capture_output=True, timeout=20, check=True).stdout
        width, height, rows = xwd_rgb(raw)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(width, height, rows))
        return rows

    def stop(self) -> None:
        stop(self.proc)
        stop(self.xvfb)


def xwd_rgb(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB rows (each led by a 0, as PNG wants) of a true-colour ZPixmap
    XWD image, what ``xwd`` writes for Xvfb's screen."""
    header = [int.from_bytes(data[i:i + 4], "big") for i in range(0, 100, 4)]
    header_size, width, height, byte_order = header[0], header[4], header[5], header[7]
    bits_per_pixel, bytes_per_line, ncolors = header[11], header[12], header[19]
    masks = header[14:17]
    assert bits_per_pixel in (24, 32), f"expected 24 or 32 bits a pixel, not {bits_per_pixel}"
    step = bits_per_pixel // 8
    shifts = [(mask & -mask).bit_length() - 1 for mask in masks]
    order = "little" if byte_order == 0 else "big"
    pixels = data[header_size + 12 * ncolors:]
    rows = []
    for y in range(height):
        line = pixels[y * bytes_per_line:y * bytes_per_line + width * step]
        out = bytearray(b"\0")
        for x in range(0, width * step, step):
            value = int.from_bytes(line[x:x + step], order)
            out += bytes(((value & m) >> s) & 0xFF for m, s in zip(masks, shifts, strict=True))
        rows.append(bytes(out))
    return width, height, b"".join(rows)


def png(width: int, height: int, raw: bytes) -> bytes:
    """A PNG of 8-bit RGB ``raw`` rows (each led by its filter byte)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((8, 2, 0, 0, 0))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class App:
    """``notifier-desktop`` on ``bus``, with XDG folders under ``home``."""

    def __init__(self, bus: PrivateBus, home: Path, config: str):
        self.bus = bus
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.opened = home / "opened.txt"
        browser = home / "browser"
        browser.write_text(f"#!/bin/sh\necho \"$1\" >> {self.opened}\n")
        browser.chmod(0o755)
        self.config = home / "config" / "notifier" / "desktop.toml"
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config)
        self.log_path = home / "app.log"
        self.env = {**bus.env(), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_CACHE_HOME": str(home / "cache"), "XDG_STATE_HOME": str(home / "state"),
                    "XDG_DATA_HOME": str(home / "data"), "BROWSER": str(browser)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> App:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(BIN / "notifier-desktop"), "-v"], env=self.env,
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if wait:
            wait_for(lambda: self.bus.owned(DESKTOP) and self.status()["connected"],
                     "the app to own its name and connect", 20, context=self.log)
        return self

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "notifier-desktop"), *args], env=self.env,
                              capture_output=True, text=True, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def call(self, method: str, signature: str = "", *args: Any) -> Any:
        return self.bus.call(DESKTOP, DESKTOP_PATH, DESKTOP, method, signature, *args)

    def status(self) -> dict[str, Any]:
        try:
            return dict(self.call("Status"))
        except dbus.DBusException:
            return {"connected": False}

    def opened_links(self) -> list[str]:
        return self.opened.read_text().split() if self.opened.exists() else []

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        stop(self.proc, 10)
        return self.proc.returncode


class Monitor:
    """``dbus-monitor`` watching the app's signals on ``bus``; its output as text."""

    def __init__(self, bus: PrivateBus, workdir: Path):
        require_program("dbus-monitor")
        self.path = workdir / "monitor.out"
        with open(self.path, "ab") as out:
            self.proc = subprocess.Popen(
                ["dbus-monitor", "--address", bus.address,
                 f"type='signal',interface='{DESKTOP}',member='NotificationReceived'"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: "NameAcquired" in self.text() or "member=" in self.text()
                 or self.path.stat().st_size > 0, "dbus-monitor to start", 10)

    def text(self) -> str:
        return self.path.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.proc)


def assigned_ids(calls: list[dict[str, Any]]) -> list[int]:
    """The id the mock daemon gave each call: the next of its counter, or the one replaced."""
    ids, next_id = [], 1
    for call in calls:
        if call["replaces_id"]:
            ids.append(call["replaces_id"])
        else:
            ids.append(next_id)
            next_id += 1
    return ids
