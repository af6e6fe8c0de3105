"""Real IRC peers: a miniircd or ngircd server, and clients that listen as users.

:class:`IrcServer` runs a server process on a free loopback port and can kill
and restart it on the same port. :class:`IrcListener` is a second IRC client
(the ``irc`` library) registered as a user's nick; it records every PRIVMSG
it gets. :class:`IrcPeer` bundles both for the backend contract suite (see contract.py).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import irc.client
import pytest
from jaraco.stream import buffer as irc_buffer

from tests.conftest import BIN, IN_CI, free_port, poll, wait_for_port

from .contract import BasePeer, Delivered


def require_program(name: str) -> None:
    """Skip (or, in CI, fail) when the program ``name`` is not installed."""
    if shutil.which(name):
        return
    if IN_CI:
        pytest.fail(f"{name} is not installed; CI must run this test")
    pytest.skip(f"{name} is not installed")


class IrcServer:
    """An IRC server process on ``127.0.0.1:port``: ``kind`` is miniircd or ngircd."""

    def __init__(self, kind: str, workdir: Path, port: int | None = None,
                 pem: Path | None = None):
        if kind not in ("miniircd", "ngircd"):
            raise ValueError(f"unknown IRC server {kind!r}")
        self.kind = kind
        self.workdir = workdir
        self.port = port or free_port()
        self.pem = pem
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def _command(self) -> list[str]:
        if self.kind == "miniircd":
            cmd = [str(BIN / "miniircd"), "--listen", "127.0.0.1", "--ports", str(self.port),
                   "--setuid", "root"]
            if self.pem is not None:
                cmd += ["--ssl-pem-file", str(self.pem)]
            return cmd
        conf = self.workdir / "ngircd.conf"
        conf.write_text(
            "[Global]\n"
            "Name = irc.test\n"
            "Info = notifier test server\n"
            "Listen = 127.0.0.1\n"
            f"Ports = {self.port}\n"
            "MotdPhrase = test\n"
            f"PidFile = {self.workdir / 'ngircd.pid'}\n"
            "ServerUID = root\n"
            "ServerGID = root\n"
            "[Options]\n"
            "PAM = no\n"
            "Ident = no\n"
            "DNS = no\n")
        return ["ngircd", "-n", "-f", str(conf)]

    def start(self) -> IrcServer:
        if self.kind == "ngircd":
            require_program("ngircd")  # Debian package ngircd
        with open(self.workdir / f"{self.kind}.log", "ab") as log:
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, timeout=10)
        except BaseException:  # pytest's failure too: the server must not outlive the test
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): every client connection drops."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass(frozen=True)
class Received:
    """One PRIVMSG a listener got."""

    sender: str
    target: str
    text: str
    #: when it arrived (time.monotonic)
    at: float


class IrcListener:
    """An IRC client registered as ``nick`` that records the PRIVMSGs it receives."""

    def __init__(self, port: int, nick: str, timeout: float = 10.0):
        self.nick = nick
        self.reactor = irc.client.Reactor()
        self.conn = self.reactor.server()
        self.conn.buffer_class = irc_buffer.LenientDecodingLineBuffer
        self._cond = threading.Condition()
        self._messages: list[Received] = []
        self._welcome = threading.Event()
        self._stop = False
        self.reactor.add_global_handler("privmsg", self._on_privmsg)
        self.reactor.add_global_handler("welcome", lambda c, e: self._welcome.set())
        self.conn.connect("127.0.0.1", port, nick)
        self._thread = threading.Thread(target=self._run, name=f"listener {nick}", daemon=True)
        self._thread.start()
        if not self._welcome.wait(timeout):
            self.close()
            raise TimeoutError(f"listener {nick} not registered on port {port} "
                               f"after {timeout} s")

    def _run(self) -> None:
        while not self._stop:
            self.reactor.process_once(0.05)

    def _on_privmsg(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        with self._cond:
            self._messages.append(Received(event.source.nick, event.target, event.arguments[0],
                                           time.monotonic()))
            self._cond.notify_all()

    @property
    def messages(self) -> list[Received]:
        with self._cond:
            return list(self._messages)

    def texts(self) -> list[str]:
        return [m.text for m in self.messages]

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Wait until ``count`` messages arrived (or ``timeout``); return all so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._messages)

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        if self.conn.is_connected():
            self.conn.disconnect("bye")


class IrcPeer(BasePeer):
    """The IRC destination for the backend contract suite, on miniircd.

    Each user gets a listener registered under a nick derived from the user
    name, the first time :meth:`address` is asked for it.
    """

    name = "irc"
    id = "irc"
    stoppable = True
    routes_by_address = True
    #: PRIVMSGs reach the listener a moment after the bot's PONG
    settle = 0.3
    server_kind = "miniircd"

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.server = IrcServer(self.server_kind, tmp_path / self.server_kind)
        self._listeners: dict[str, IrcListener] = {}
        self._seen: dict[str, int] = {}

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()
        self.server.stop()

    def config(self) -> dict[str, Any]:
        return {"irc": {"host": "127.0.0.1", "port": self.server.port, "nick": "notifier",
                        "rate": 50.0, "burst": 20}}

    def address(self, user: str) -> str:
        nick = "u_" + "".join(c for c in user if c.isascii() and c.isalnum())[:20]
        # A stopped server has nobody to listen on it.
        if nick not in self._listeners and self.server.proc is not None:
            self._listeners[nick] = IrcListener(self.server.port, nick)
        return nick

    def received(self, timeout: float) -> list[Delivered]:
        new = poll(lambda: [(nick, m) for nick, listener in self._listeners.items()
                            for m in listener.messages[self._seen.get(nick, 0):]], timeout)
        for nick, _ in new:
            self._seen[nick] = self._seen.get(nick, 0) + 1
        return [Delivered(address=m.target, text=m.text, raw=m)
                for _, m in sorted(new, key=lambda pair: pair[1].at)]

    def reject_address(self) -> str | None:
        return "nobody_here"
