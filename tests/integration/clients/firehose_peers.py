"""Real peers for the firehose tests: IRC servers, a watching client, the bus, the bot.

:class:`Watcher` is a second real IRC client (the ``irc`` library) that joins
channels first (so it is their operator on ngircd) and records every line
the bot sends: channel notices and messages, private messages, joins and
quits. :class:`Bot` runs :class:`~notifier.clients.firehose.Firehose` in a
thread against a real relay; :func:`inspircd` starts an InspIRCd (which has
channel mode ``+c``) from its unpacked Debian package.
"""

from __future__ import annotations

import itertools
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import irc.client
import irc.connection
import pytest
from jaraco.stream import buffer as irc_buffer

from notifier.bus.relay import Relay
from notifier.clients.firehose import Firehose
from notifier.config import config_from_dict
from tests.conftest import IN_CI, free_port, wait_for, wait_for_port
from tests.integration.backends.peers_irc import require_program
from tests.integration.rawbus import RawPublisher

#: where dev/setup unpacks Debian's inspircd (it conflicts with ngircd as a package)
INSPIRCD = Path(__file__).resolve().parents[3] / ".venv" / "inspircd" / "usr" / "sbin" / "inspircd"


@dataclass(frozen=True)
class Line:
    """One thing the watcher saw."""

    kind: str  # pubnotice, pubmsg, privmsg, privnotice, join, quit, kick
    sender: str
    target: str
    text: str
    at: float


class Watcher:
    """An IRC client that joins ``channels`` and records what it sees."""

    def __init__(self, port: int, nick: str, channels: list[str], timeout: float = 15.0,
                 tls: bool = False):
        self.nick = nick
        self.reactor = irc.client.Reactor()
        self.conn = self.reactor.server()
        self.conn.buffer_class = irc_buffer.LenientDecodingLineBuffer
        self._lock = threading.Lock()
        self._lines: list[Line] = []
        self._joined: set[str] = set()
        self._stop = False
        self._welcome = threading.Event()
        self.reactor.add_global_handler("welcome", lambda c, e: self._welcome.set())
        for kind in ("pubnotice", "pubmsg", "privmsg", "privnotice", "join", "quit", "kick",
                     "part", "nick", "mode", "whoisaccount", "nosuchnick"):
            self.reactor.add_global_handler(kind, self._record)
        factory = irc.connection.Factory()
        if tls:  # the watcher trusts any certificate: the bot's checks are under test
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            factory = irc.connection.Factory(wrapper=context.wrap_socket)
        self.conn.connect("127.0.0.1", port, nick, connect_factory=factory)
        self._thread = threading.Thread(target=self._run, name=f"watcher {nick}", daemon=True)
        self._thread.start()
        wait_for(self._welcome.is_set, f"{nick} to register", timeout)
        for channel in channels:
            self.conn.join(channel)
        wait_for(lambda: self._joined >= {c.lower() for c in channels},
                 f"{nick} to join {channels}", timeout)

    def _run(self) -> None:
        while not self._stop:
            self.reactor.process_once(0.02)

    def _record(self, conn: Any, event: Any) -> None:
        sender = event.source.nick if event.source else ""
        if event.type == "join" and sender == self.nick:
            self._joined.add(event.target.lower())
        text = " ".join(str(a) for a in event.arguments)
        with self._lock:
            self._lines.append(Line(event.type, sender, event.target or "", text,
                                    time.monotonic()))

    def lines(self, kind: str | None = None, target: str | None = None,
              sender: str | None = None) -> list[Line]:
        with self._lock:
            lines = list(self._lines)
        return [x for x in lines if (kind is None or x.kind == kind)
                and (target is None or x.target.lower() == target.lower())
                and (sender is None or x.sender == sender)]

    def texts(self, target: str, kind: str = "pubnotice") -> list[str]:
        return [x.text for x in self.lines(kind, target)]

    def say(self, target: str, text: str) -> None:
        self.conn.privmsg(target, text)

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        if self.conn.is_connected():
            self.conn.disconnect("bye")


class Bus:
    """A relay on two free ports and a publisher on its inbound side."""

    def __init__(self) -> None:
        self.inbound, self.outbound = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
        self.relay = Relay(self.inbound, self.outbound)
        self._thread = self.relay.start_thread()
        self.publisher = RawPublisher(self.inbound)
        self._probes = itertools.count()

    def publish(self, app: str, topic: str, body: dict[str, Any]) -> None:
        self.publisher.send(*self.publisher.builder.encode(app, topic, body))

    def probe_until(self, seen: Callable[[], bool], what: str) -> None:
        """Publish ``probe`` messages until ``seen()``: ZeroMQ subscriptions take a moment."""
        def arrived() -> bool:
            if seen():
                return True
            self.publish("probe", "probe", {"log": f"probe {next(self._probes)}"})
            return False

        wait_for(arrived, what, 15, interval=0.2)

    def close(self) -> None:
        self.publisher.close()
        self.relay.stop()
        self._thread.join(5)


class Bot:
    """The firehose bot, in a thread, with ``firehose`` as its ``[firehose]`` table."""

    def __init__(self, bus: Bus, firehose: dict[str, Any]):
        self.firehose = Firehose(config_from_dict(
            {"bus": {"endpoints": [bus.outbound]}, "firehose": firehose}, "<test>"))
        self.stopping = threading.Event()
        self.failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="firehose bot", daemon=True)
        self._thread.start()
        # the bot sees probes once it is subscribed; the channels exclude them
        bus.probe_until(lambda: any(r["app"] == "probe" for r in self.firehose.history),
                        "the bot to subscribe to the bus")

    def _run(self) -> None:
        try:
            self.firehose.run(self.stopping)
        except BaseException as exc:  # reported by the test
            self.failure.append(exc)

    @property
    def network(self) -> Any:
        return self.firehose.networks[0]

    def wait_joined(self, timeout: float = 20.0) -> None:
        wait_for(lambda: all(c.joined for c in self.network.channels.values()),
                 "the bot to join its channels", timeout)

    def count(self, channel: str, kind: str) -> int:
        return self.firehose.metrics.get(self.network.name, channel, kind)

    def close(self) -> None:
        self.stopping.set()
        self._thread.join(15)
        self.firehose.close()
        assert not self.failure, self.failure


def network(port: int, channels: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A ``[[firehose.networks]]`` on loopback whose channels leave out the probes."""
    for channel in channels:
        exclude = channel.setdefault("exclude", {})
        exclude.setdefault("applications", []).append("probe")
    return {"name": "test", "host": "127.0.0.1", "port": port, "nick": "firehose",
            "line_rate": 2.0, "burst": 4, "channels": channels, **extra}


def require_inspircd() -> Path:
    if INSPIRCD.exists():
        return INSPIRCD
    if IN_CI:
        pytest.fail(f"{INSPIRCD} is missing; dev/setup unpacks Debian's inspircd there")
    pytest.skip(f"{INSPIRCD} is missing (dev/setup unpacks Debian's inspircd there)")


class InspIRCd:
    """InspIRCd 3 on a free loopback port, with m_blockcolor (channel mode +c).

    With ``services=True`` it also listens for a services server (:class:`Services`) on
    ``link_port``, and relays SASL to it: accounts, ``330`` in WHOIS, channel mode ``+R``.
    """

    def __init__(self, workdir: Path, services: bool = False):
        self.binary = require_inspircd()
        self.workdir = workdir
        self.port = free_port()
        self.link_port = free_port()
        link = f"""
<bind address="127.0.0.1" port="{self.link_port}" type="servers">
<module name="spanningtree">
<module name="cap">
<module name="sasl">
<module name="services_account">
<link name="{SERVICES_NAME}" ipaddr="127.0.0.1" port="{self.link_port}"
  allowmask="127.0.0.0/8" sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}" timeout="30">
<uline server="{SERVICES_NAME}" silent="yes">
<sasl target="{SERVICES_NAME}">
""" if services else ""
        workdir.mkdir(parents=True, exist_ok=True)
        modules = self.binary.parents[1] / "lib" / "inspircd" / "modules"
        (workdir / "inspircd.conf").write_text(f"""
<server name="irc.test" description="test" network="Test">
<admin name="test" nick="test" email="test@example.org">
<bind address="127.0.0.1" port="{self.port}" type="clients">
<connect allow="*" timeout="60" threshold="1000" commandrate="100000" fakelag="no"
  localmax="100" globalmax="100" recvq="100000" sendq="1000000" maxchans="20"
  resolvehostnames="no">
<class name="everything" commands="*" privs="*" usermodes="*" chanmodes="*">
<files motd="{workdir}/motd">
<path moduledir="{modules}" logdir="{workdir}" datadir="{workdir}" runtimedir="{workdir}">
<pid file="{workdir}/inspircd.pid">
<dns server="127.0.0.1" timeout="1">
<options defaultmodes="not">
<security runasuser="" runasgroup="">
<performance clonesonconnect="no">
<module name="blockcolor">{link}
<log method="file" type="*" level="default" target="{workdir}/ircd.log">
""")
        (workdir / "motd").write_text("test\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> InspIRCd:
        with open(self.workdir / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "--nofork", "--runasroot", "--config",
                 str(self.workdir / "inspircd.conf")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, 15)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


SERVICES_NAME, LINK_PASSWORD = "services.test", "linkpass"


class Services:
    """Atheme (Debian's atheme-services) linked to an :class:`InspIRCd` started with
    ``services=True``: NickServ (REGISTER, IDENTIFY) and SaslServ (PLAIN), its database in
    ``workdir``. :meth:`register` creates an account as a person does, over a real client."""

    def __init__(self, workdir: Path, ircd: InspIRCd):
        require_program("atheme-services")
        self.workdir, self.ircd = workdir, ircd
        workdir.mkdir(parents=True, exist_ok=True)
        modules = "\n".join(f'loadmodule "modules/{m}";' for m in (
            "protocol/inspircd", "backend/opensex", "crypto/pbkdf2v2", "nickserv/main",
            "nickserv/register", "nickserv/identify", "saslserv/main", "saslserv/plain"))
        (workdir / "atheme.conf").write_text(f"""{modules}
serverinfo {{
  name = "{SERVICES_NAME}"; desc = "test services"; numeric = "00A"; recontime = 1;
  netname = "Test"; hidehostsuffix = "users.test"; adminname = "test";
  adminemail = "test@example.org"; registeremail = "test@example.org"; mta = "/bin/true";
  loglevel = {{ all; }}; maxlogins = 5; maxusers = 5; mdlimit = 30; emaillimit = 10;
  emailtime = 300; auth = none; casemapping = rfc1459;
}};
uplink "irc.test" {{ host = "127.0.0.1"; port = {ircd.link_port}; password = "{LINK_PASSWORD}"; }};
nickserv {{ nick = "NickServ"; user = "NickServ"; host = "{SERVICES_NAME}"; real = "Nicks";
  maxnicks = 5; expire = 30; }};
saslserv {{ nick = "SaslServ"; user = "SaslServ"; host = "{SERVICES_NAME}"; real = "SASL"; }};
general {{ commit_interval = 5; ratelimit_uses = 100; ratelimit_period = 1;
  uplink_sendq_limit = 1048576; language = "en"; }};
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Services:
        with open(self.workdir / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["atheme-services", "-n", "-c", str(self.workdir / "atheme.conf"),
                 "-D", str(self.workdir), "-l", str(self.workdir / "atheme.log"),
                 "-p", str(self.workdir / "atheme.pid")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def register(self, account: str, password: str) -> None:
        """Register ``account`` with NickServ from a client of that nick, which then quits."""
        client = Watcher(self.ircd.port, account, [])
        try:
            # services link a moment after the server starts: ask until NickServ answers
            def registered() -> bool:
                notices = [x.text for x in client.lines("privnotice", sender="NickServ")]
                if any("registered" in t for t in notices):
                    return True
                if not notices:
                    client.say("NickServ", f"REGISTER {password} {account}@example.org")
                return False

            wait_for(registered, f"NickServ to register {account}", 30, interval=1.0)
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate ``proc`` (then kill it, if it lingers) and reap it."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def have_program(name: str) -> bool:
    return shutil.which(name) is not None
