"""The IRC connection among many ``notifier serve`` workers: one at a time, moved on kill -9.

Two real workers share a PostgreSQL schema and a RabbitMQ queue (see
cluster.py) and a real IRC server, ngircd, on which alice is connected with
a real ``irc`` library client; her rule sends every message to irc. What the
server saw is read from its log (each connection accepted, each user
registered and gone, in order) and from its LUSERS answer, whose "Max" is
the most users it ever had at once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
#: seconds around the kill within which a line counts as in flight then
IN_FLIGHT = 1.0
#: the lock's part: the one IRC worker
PART = "worker-irc"

_ACCEPTED = re.compile(r'Accepted connection (\d+) from "127\.0\.0\.1:(\d+)"')
#: the names of the messages published, as they appear in a line
_NAME = re.compile(r"\b((?:before|during|after)\d+)\b")
_USER = re.compile(r'User "([^!"]+)![^"]*" (registered|unregistered) \(connection (\d+)\)')


@dataclass
class Session:
    """One user's connection as the IRC server logged it."""

    nick: str
    #: the client's port, to tell which process it came from
    port: int
    gone: bool = False


class Ircd(IrcServer):
    """ngircd, and what its log says about who was connected."""

    def sessions(self) -> tuple[list[Session], int]:
        """Every user session in order, and the most ``notifier*`` nicks registered at once."""
        ports: dict[str, int] = {}
        open_: dict[str, Session] = {}
        sessions: list[Session] = []
        most = at_once = 0
        for line in (self.workdir / "ngircd.log").read_text(errors="replace").splitlines():
            if accepted := _ACCEPTED.search(line):
                ports[accepted[1]] = int(accepted[2])
            elif (user := _USER.search(line)) is not None:
                nick, what, conn = user[1], user[2], user[3]
                if what == "registered":
                    open_[conn] = session = Session(nick, ports[conn])
                    sessions.append(session)
                    at_once += nick.startswith("notifier")
                    most = max(most, at_once)
                elif conn in open_:
                    session = open_.pop(conn)
                    session.gone = True
                    at_once -= session.nick.startswith("notifier")
        return sessions, most

    def notifiers(self) -> list[Session]:
        return [s for s in self.sessions()[0] if s.nick.startswith("notifier")]


class Alice(IrcListener):
    """alice's client; it also asks the server how many users it had at most."""

    def __init__(self, port: int):
        super().__init__(port, "alice")
        self.local: list[tuple[int, int]] = []  # (current, max) per LUSERS answer
        self.reactor.add_global_handler("n_local", self._on_local)

    def _on_local(self, conn: object, event: object) -> None:
        args = event.arguments  # type: ignore[attr-defined]
        with self._cond:
            self.local.append((int(args[0]), int(args[1])))
            self._cond.notify_all()

    def lusers(self) -> tuple[int, int]:
        """The server's local users now and at most since it started."""
        with self._cond:
            seen = len(self.local)
        self.conn.send_raw("LUSERS")
        # ngircd holds back a client's commands a second or two (flood protection).
        wait_for(lambda: len(self.local) > seen, "the server's LUSERS answer", timeout=10)
        with self._cond:
            return self.local[-1]

    def got(self) -> Counter[str]:
        """How many lines alice got for each message (by its name)."""
        count: Counter[str] = Counter()
        for message in self.messages:
            count.update(set(_NAME.findall(message.text)))
        return count

    def first(self) -> dict[str, float]:
        first: dict[str, float] = {}
        for message in self.messages:
            for name in _NAME.findall(message.text):
                first.setdefault(name, message.at)
        return first


def client_port(worker: ServeProcess, server_port: int) -> set[int]:
    """The local ports of the worker's TCP connections to ``server_port`` (from /proc)."""
    assert worker.proc is not None
    inodes = set()
    for fd in Path(f"/proc/{worker.proc.pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for row in Path(f"/proc/{worker.proc.pid}/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in inodes and int(remote.split(":")[1], 16) == server_port:
            ports.add(int(local.split(":")[1], 16))
    return ports


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


def test_one_irc_connection_among_workers_and_it_moves_on_kill_9(
        cluster: Cluster, ircd: Ircd, alice: Alice) -> None:
    workers = {"one": cluster.start("one"), "two": cluster.start("two")}

    def holders() -> list[str]:
        return [n for n, w in workers.items() if w.proc is not None and w.proc.poll() is None
                and PART in cluster.health(w)["leading"]]

    def connected(count: int) -> list[Session] | None:
        live = [s for s in ircd.notifiers() if not s.gone]
        return live if len(ircd.notifiers()) == count and len(live) == 1 else None

    def context() -> str:
        return cluster.logs() + "\n--- ngircd\n" + (ircd.workdir / "ngircd.log").read_text()

    # One worker holds the IRC part, and the server has that worker's one connection.
    holder, = wait_for(holders, "a worker to hold the IRC connection", timeout=15,
                       context=context)
    other = "two" if holder == "one" else "one"
    session, = wait_for(lambda: connected(1), "the notifier on the IRC server", timeout=15,
                        context=context)
    assert session.nick == "notifier"
    assert session.port in client_port(workers[holder], ircd.port)
    assert not client_port(workers[other], ircd.port)

    # Whichever worker takes a message from the queue, alice gets it once, from that nick.
    before = [t.rsplit(".", 1)[1] for t in cluster.publish(f"before{i}"
                                                             for i in range(30))]
    wait_for(lambda: all(alice.got()[n] for n in before), "alice to get every line",
             timeout=30, context=context)
    assert set(alice.got().values()) == {1}, (alice.got().most_common(3), alice.texts()[:2])
    assert {m.sender for m in alice.messages} == {"notifier"}
    received = [w.metric("notifier_messages_received_total") for w in workers.values()]
    assert sum(received) == 30 and min(received) > 0, received

    # kill -9 the holder while lines go out; publish more while nobody is connected.
    during = [t.rsplit(".", 1)[1] for t in cluster.publish(f"during{i}"
                                                             for i in range(60))]
    wait_for(lambda: any(alice.got()[n] for n in during), "the lines to be going out",
             timeout=30, context=context)
    workers[holder].kill9()
    killed = time.monotonic()
    after = [t.rsplit(".", 1)[1] for t in cluster.publish(f"after{i}"
                                                            for i in range(30))]
    session, = wait_for(lambda: connected(2), "the other worker's connection", timeout=HANDOVER,
                        context=context, interval=0.01)
    took = time.monotonic() - killed
    print(f"the IRC connection moved to the other worker in {took:.2f} s after kill -9")
    assert session.port in client_port(workers[other], ircd.port)
    assert holders() == [other]

    # Nothing lost: what was due at the kill and what came after reach alice.
    names = before + during + after
    wait_for(lambda: all(alice.got()[n] for n in names), "alice to get every line",
             timeout=30, context=context)
    got = alice.got()
    assert set(got) == set(names)
    # Only lines in flight at the kill came twice: the first copy arrived just before it.
    repeated = {n: c for n, c in got.items() if c > 1}
    first = alice.first()
    assert all(c == 2 and abs(first[n] - killed) <= IN_FLIGHT for n, c in repeated.items()), \
        {n: (c, round(first[n] - killed, 2)) for n, c in repeated.items()}
    print(f"{len(names)} messages, {len(repeated)} line(s) sent twice (in flight at the kill)")

    # Never two notifier connections at once: in the server's log, and in its own count.
    sessions, most = ircd.sessions()
    assert most == 1, sessions
    assert [s.nick for s in sessions] == ["alice", "notifier", "notifier"], sessions
    assert alice.lusers() == (2, 2)  # alice and one notifier, now and at most
