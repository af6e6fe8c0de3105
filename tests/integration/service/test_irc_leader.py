"""The IRC connection among many ``notifier serve`` workers: one at a time, moved on kill -9.

Two real workers share a PostgreSQL schema and a RabbitMQ queue (see
cluster.py) and a real IRC server, ngircd, on which alice is connected with
a real ``irc`` library client; her rule sends every message to irc. What the
server saw is read from its log (each connection accepted with its client's
port, each user registered, renamed and gone, in order) and from its LUSERS
answer, whose "Max" is the most users it ever had at once. A client's port
tells which worker process the connection is from.

ngircd's flood protection holds back a client's commands: it relays about
three lines a second from the notifier, and the PING that follows a line
(its confirmation, see backends/irc.py) may wait a second. It may also read
a killed worker's connection late, and so keep its nick a moment after the
kill.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service, wait_for
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.backends.peers_irc import IrcListener, IrcServer
from tests.integration.bus.conftest import Broker
from tests.integration.serveproc import ServeProcess
from tests.integration.service.cluster import Cluster

pytestmark = pytest.mark.integration

#: the bound on the IRC connection moving to the other worker after a kill -9
HANDOVER = 15.0
#: seconds before the kill within which a line counts as in flight then: relayed by the
#: server, its PONG held back by the flood protection, or not yet recorded sent
IN_FLIGHT = 2.0
#: the part held by one worker: the one IRC worker
PART = "worker-irc"

#: the names of the messages published, as they appear in a line
_NAME = re.compile(r"\b((?:before|during|after)\d+)\b")
_ACCEPTED = re.compile(r'Accepted connection (\d+) from "127\.0\.0\.1:(\d+)"')
_USER = re.compile(r'User "([^!"]+)![^"]*" (registered|unregistered) \(connection (\d+)\)')
_RENAMED = re.compile(r'changed nick \(connection (\d+)\): "[^"]+" -> "([^"]+)"')


@dataclass
class Session:
    """One user's connection as the IRC server logged it."""

    #: its nicks, the first it registered with first
    nicks: list[str]
    #: the client's port, to tell which process it came from
    port: int
    gone: bool = False
    #: the log's lines before it was accepted
    after_line: int = 0
    renamed: list[int] = field(default_factory=list)

    @property
    def nick(self) -> str:
        return self.nicks[-1]


class Ircd(IrcServer):
    """ngircd, and what its log says about who was connected."""

    def log_lines(self) -> list[str]:
        return (self.workdir / "ngircd.log").read_text(errors="replace").splitlines()

    def sessions(self, upto: int | None = None) -> list[Session]:
        """Every user session in order (as of the log's first ``upto`` lines)."""
        accepted: dict[str, tuple[int, int]] = {}
        live: dict[str, Session] = {}
        sessions: list[Session] = []
        for n, line in enumerate(self.log_lines()[:upto]):
            if found := _ACCEPTED.search(line):
                accepted[found[1]] = (int(found[2]), n)
            elif found := _USER.search(line):
                nick, what, conn = found[1], found[2], found[3]
                if what == "registered":
                    port, at = accepted[conn]
                    live[conn] = session = Session([nick], port, after_line=at)
                    sessions.append(session)
                elif conn in live:
                    live.pop(conn).gone = True
            elif (found := _RENAMED.search(line)) and found[1] in live:
                live[found[1]].nicks.append(found[2])
        return sessions

    def notifiers(self, upto: int | None = None) -> list[Session]:
        return [s for s in self.sessions(upto) if s.nicks[0].startswith("notifier")]


class Alice(IrcListener):
    """alice's client; it also asks the server how many users it has, and had at most."""

    def __init__(self, port: int):
        super().__init__(port, "alice")
        self.local: list[tuple[int, int]] = []  # (now, at most) per LUSERS answer
        self.reactor.add_global_handler("n_local", self._on_local)

    def _on_local(self, conn: Any, event: Any) -> None:
        with self._cond:
            self.local.append((int(event.arguments[0]), int(event.arguments[1])))

    def lusers(self) -> tuple[int, int]:
        """The server's local users now and at most since it started."""
        with self._cond:
            seen = len(self.local)
        self.conn.send_raw("LUSERS")
        # The flood protection may hold the command back a few seconds.
        wait_for(lambda: len(self.local) > seen, "the server's LUSERS answer", timeout=10)
        with self._cond:
            return self.local[-1]

    def got(self) -> Counter[str]:
        """How many lines alice got for each message (by its name)."""
        return Counter(name for m in self.messages for name in set(_NAME.findall(m.text)))

    def first(self) -> dict[str, float]:
        """When the first line for each message arrived (time.monotonic())."""
        first: dict[str, float] = {}
        for message in self.messages:
            for name in _NAME.findall(message.text):
                first.setdefault(name, message.at)
        return first


def ports(worker: ServeProcess, server_port: int) -> set[int]:
    """The local ports of the worker's TCP connections to ``server_port`` (from /proc)."""
    assert worker.proc is not None
    pid = worker.proc.pid
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            sockets.add(target[len("socket:["):-1])
    found = set()
    for row in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in sockets and int(remote.split(":")[1], 16) == server_port:
            found.add(int(local.split(":")[1], 16))
    return found


@pytest.fixture
def ircd(tmp_path: Path) -> Iterator[Ircd]:
    server = Ircd("ngircd", tmp_path / "ngircd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def alice(ircd: Ircd) -> Iterator[Alice]:
    client = Alice(ircd.port)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def cluster(tmp_path: Path, smtp: SmtpPeer, ircd: Ircd) -> Iterator[Cluster]:
    require_service("RabbitMQ", 5672)
    require_service("PostgreSQL", 5432)
    broker = Broker(f"ni{time.monotonic_ns() % 10**10}")
    c = Cluster(tmp_path, broker, smtp, settings={"irc": {
        "host": "127.0.0.1", "port": ircd.port, "nick": "notifier", "rate": 50.0,
        "burst": 20}})
    try:
        c.load("users", [{"name": "alice", "emails": ["alice@example.org"],
                          "ircnicks": ["alice"]}])
        c.load("rules", [c.rule("alice", "all", "*", destinations=("irc",))])
        yield c
    finally:
        c.close()
        broker.cleanup()


def published(cluster: Cluster, tag: str, n: int) -> list[str]:
    """Publish ``n`` messages; their names."""
    return [t.rsplit(".", 1)[1] for t in cluster.publish(f"{tag}{i}" for i in range(n))]


def test_one_irc_connection_among_workers_and_it_moves_on_kill_9(
        cluster: Cluster, ircd: Ircd, alice: Alice) -> None:
    workers = {"one": cluster.start("one"), "two": cluster.start("two")}

    def holders() -> list[str]:
        return [n for n, w in workers.items() if w.proc is not None and w.proc.poll() is None
                and PART in cluster.health(w)["leading"]]

    def context() -> str:
        return cluster.logs() + "\n--- ngircd\n" + "\n".join(ircd.log_lines())

    # One worker holds the IRC part; the server has one notifier connection, from it.
    holder, = wait_for(holders, "a worker to hold the IRC connection", timeout=15,
                       context=context)
    other = "two" if holder == "one" else "one"
    session, = wait_for(ircd.notifiers, "the notifier on the IRC server", timeout=15,
                        context=context)
    assert session.nick == "notifier"
    assert session.port in ports(workers[holder], ircd.port)
    assert not ports(workers[other], ircd.port)

    # Whichever worker takes a message from the queue, alice gets it once, from that nick.
    before = published(cluster, "before", 12)
    wait_for(lambda: all(alice.got()[n] for n in before), "alice to get every line",
             timeout=30, context=context)
    assert set(alice.got().values()) == {1}, alice.got()
    assert {m.sender for m in alice.messages} == {"notifier"}
    received = [w.metric("notifier_messages_received_total") for w in workers.values()]
    assert sum(received) == 12 and min(received) > 0, received
    # Never more than alice and one notifier on the server, by its own count.
    assert alice.lusers() == (2, 2)

    # kill -9 the holder while lines go out; publish more while nobody is connected.
    during = published(cluster, "during", 24)
    wait_for(lambda: any(alice.got()[n] for n in during), "the lines to be going out",
             timeout=30, context=context)
    workers[holder].kill9()
    killed = time.monotonic()
    seen_at_kill = len(ircd.log_lines())
    after = published(cluster, "after", 12)
    assert [s.port for s in ircd.notifiers(seen_at_kill)] == [session.port]

    def moved() -> Session | None:
        new = [s for s in ircd.notifiers() if s.port != session.port]
        return new[0] if new and holders() == [other] else None

    new = wait_for(moved, "the other worker's connection", timeout=HANDOVER,
                   context=context, interval=0.01)
    took = time.monotonic() - killed
    print(f"the IRC connection moved to the other worker in {took:.2f} s after kill -9"
          f" (registered as {new.nick})")
    assert new.after_line >= seen_at_kill  # connected after the kill, not before
    assert new.port in ports(workers[other], ircd.port)

    # Nothing lost: what was due at the kill and what came after reach alice.
    names = before + during + after
    wait_for(lambda: all(alice.got()[n] for n in names), "alice to get every line",
             timeout=30, context=context)
    print(f"every line reached alice {time.monotonic() - killed:.2f} s after the kill")
    got = alice.got()
    assert set(got) == set(names)
    # Only lines in flight at the kill came twice: the first copy arrived just before it.
    repeated = {n: c for n, c in got.items() if c > 1}
    first = alice.first()
    ahead = {n: round(killed - first[n], 2) for n in repeated}
    assert all(c == 2 for c in repeated.values()), repeated
    assert all(0 <= s <= IN_FLIGHT for s in ahead.values()), ahead
    print(f"{len(names)} messages, {len(repeated)} line(s) sent twice, first copies "
          f"{sorted(ahead.values())} s before the kill")

    # The dead worker's connection is gone; the new one has the configured nick (taken back
    # if the server still had the old connection when it registered) and is the only one.
    wait_for(lambda: [(s.port, s.gone, s.nick) for s in ircd.notifiers()] == [
        (session.port, True, "notifier"), (new.port, False, "notifier")],
        "one notifier connection, under its own nick", timeout=20, context=context)
    assert alice.lusers()[0] == 2
