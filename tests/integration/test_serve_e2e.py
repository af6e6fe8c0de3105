"""``notifier serve`` end to end, with all four backends against real peers.

Messages are published with ``notifier-logger``; deliveries are read at an
SMTP server (aiosmtpd), an IRC server (miniircd) with a client per user, a
private D-Bus with the mock notification daemon, and the Atom feed through
feedparser.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest

from notifier.storage import Store
from notifier.storage.outbox import Outbox
from tests.conftest import free_port, run, wait_for
from tests.integration.backends.contract import collect
from tests.integration.backends.peers_dbus import DesktopPeer
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.backends.peers_irc import IrcPeer
from tests.integration.rawbus import RawPublisher
from tests.integration.serveproc import ServeProcess, merge, write_toml
from tests.integration.web.sse import EventStream

pytestmark = pytest.mark.integration

GIT = "*.git.*"


@dataclass
class World:
    tmp: Path
    config: Path
    http: str
    smtp: SmtpPeer
    irc: IrcPeer
    desktop: DesktopPeer
    serve: ServeProcess
    _store: Store | None = None

    def cli(self, *args: str, input: str | None = None) -> Any:
        result = run("notifier", *args, "--config", str(self.config), input=input)
        assert result.returncode == 0, result.stderr
        return result

    def log(self, *lines: str, modname: str = "git", topic: str = "repo.update") -> None:
        result = run("notifier-logger", f"--modname={modname}", f"--topic={topic}",
                     "--config", str(self.config), input="".join(f"{x}\n" for x in lines))
        assert result.returncode == 0, result.stderr

    def history(self) -> list[dict[str, Any]]:
        out = self.cli("history", "list", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def store(self) -> Store:
        """The service's database, read from here (quicker than a command, to poll)."""
        if self._store is None:
            self._store = Store(f"sqlite:///{self.tmp / 'notifier.db'}", create=False)
        return self._store

    def recorded(self, text: str) -> str | None:
        """The msg_id of the message logged as ``text``, once it is in the history."""
        for m in self.store().message_rows():
            if m.envelope["msg"].get("log") == text:
                return m.msg_id
        return None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def emails(smtp: SmtpPeer, want: int, timeout: float = 20) -> list[Any]:
    """The mails that arrive until there are ``want`` (or ``timeout`` s passed)."""
    return collect(smtp, want, timeout)


def first_lines(mails: list[Any], address: str | None = None) -> list[str]:
    return [m.text.splitlines()[0] for m in mails if address in (None, m.address)]


def mails_until(smtp: SmtpPeer, address: str, lines: str | set[str], what: str) -> list[Any]:
    """Every mail that arrives until ``address`` got those whose first lines are ``lines``."""
    want = {lines} if isinstance(lines, str) else lines
    got: list[Any] = []

    def arrived() -> bool:
        got.extend(smtp.received(0.5))
        return want <= set(first_lines(got, address))

    wait_for(arrived, what, interval=0)
    return got


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    smtp, irc, desktop = SmtpPeer(tmp_path / "smtp"), IrcPeer(tmp_path), DesktopPeer(tmp_path)
    for peer in (smtp, irc, desktop):
        peer.start()
    http = f"127.0.0.1:{free_port()}"
    config = write_toml(tmp_path / "notifier.toml", merge(
        {"database_url": f"sqlite:///{tmp_path / 'notifier.db'}",
         "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                 "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
         "http": {"listen": http},
         "delivery": {"retry_base": 0.2, "retry_max": 1.0}},
        smtp.config(), irc.config(), desktop.config()))
    users = [
        {"name": "alice", "emails": ["alice@example.org"], "ircnicks": [irc.address("alice")],
         "groups": []},
        {"name": "bob", "emails": ["bob@example.org"], "ircnicks": [irc.address("bob")],
         "groups": [], "delivery": {"email": {"digest": {"every": "4s", "max_items": 100}}}},
        {"name": "carol", "emails": ["carol@example.org"], "ircnicks": [irc.address("carol")],
         "groups": []},
        {"name": "dave", "emails": ["dave@example.org"], "ircnicks": [], "groups": []},
    ]
    rules = [
        {"user": "alice", "name": "git", "track": {"kind": "topics", "patterns": [GIT]},
         "destinations": ["email", "irc", "rss", "desktop"]},
        {"user": "bob", "name": "git digest", "track": {"kind": "topics", "patterns": [GIT]},
         "destinations": ["email", "irc"]},
        {"user": "carol", "name": "elsewhere",
         "track": {"kind": "topics", "patterns": ["org.nothing.*"]},
         "destinations": ["email", "irc"]},
    ]
    (tmp_path / "users.json").write_text(json.dumps(users))
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    serve = ServeProcess(config, http, tmp_path / "serve.log")
    w = World(tmp_path, config, http, smtp, irc, desktop, serve)
    w.cli("users", "import", str(tmp_path / "users.json"))
    w.cli("rules", "import", str(tmp_path / "rules.json"))
    try:
        yield w
    finally:
        serve.ensure_stopped()
        w.close()
        for peer in (desktop, irc, smtp):
            peer.stop()


def wait_until_window_start(length: float) -> float:
    """Wait for the clock to pass a window boundary; return when the next one starts."""
    now = time.time()
    if now % length > 0.3:
        time.sleep(length - now % length + 0.05)  # the clock is the condition: no probe needed
    return (time.time() // length + 1) * length


def test_every_destination_gets_what_it_should(world: World) -> None:
    world.serve.start()
    token = json.loads(world.cli("users", "show", "alice", "--json").stdout)["feed_token"]
    stream = EventStream(f"http://{world.http}/users/alice/stream?token={token}")
    wait_for(lambda: world.serve.metric("notifier_streams_open") >= 1, "the stream to open")
    boundary = wait_until_window_start(4.0)
    world.log("commit one", "commit two", "commit three")
    world.log("something else", modname="other", topic="thing")

    # alice's live stream, opened before: the three, as they were recorded.
    try:
        assert sorted(e.data["summary"] for e in stream.events(3)) == \
            ["git: commit one", "git: commit three", "git: commit two"]
    finally:
        stream.close()

    # Email, at once for alice; bob's waits for his digest.
    mails = emails(world.smtp, 3)
    assert sorted(m.address for m in mails) == ["alice@example.org"] * 3
    assert sorted(m.text.splitlines()[0] for m in mails) == \
        ["[git] commit one", "[git] commit three", "[git] commit two"]
    first = mails[0].raw.message
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Every link in the mail leads somewhere.
    settings = re.search(r"Your notification settings: (\S+)", mails[0].text)
    assert settings is not None and settings.group(1) == f"http://{world.http}/"
    page = world.serve.get("/")
    assert page[0] == 200 and b"Your notification settings" in page[2]
    assert first["X-Notifier-Rule"] == "git" and first["X-Notifier-App"] == "git"
    assert first.get_body(("html",)) is not None

    # IRC, to alice and bob; never to carol.
    lines = collect(world.irc, 6, timeout=15)
    assert sorted((d.address, d.text.split("commit ")[-1]) for d in lines) == sorted(
        (nick, n) for nick in ("u_alice", "u_bob") for n in ("one", "two", "three"))

    # Desktop: alice's session bus.
    calls = collect(world.desktop, 3)
    assert sorted(c.raw["summary"] for c in calls) == \
        ["git: commit one", "git: commit three", "git: commit two"]
    assert all(c.raw["app_name"] == "notifier-test" for c in calls)

    # The feed, through HTTP with alice's token; a wrong token is a 404.
    status, headers, body = world.serve.get(f"/feeds/alice.atom?token={token}")
    assert status == 200
    feed = feedparser.parse(body)
    assert feed.bozo == 0
    assert sorted(e.title for e in feed.entries) == \
        ["[git] commit one", "[git] commit three", "[git] commit two"]
    assert world.serve.get(f"/feeds/alice.atom?token={token}x")[0] == 404
    assert world.serve.get(f"/feeds/bob.atom?token={token}")[0] == 404
    again = world.serve.get(f"/feeds/alice.atom?token={token}",
                            {"If-None-Match": headers["ETag"]})
    assert again[0] == 304

    # Bob's digest: nothing before the window ends, then one mail with all three.
    early = world.smtp.received(max(0.0, boundary - time.time() - 0.3))
    assert early == [], "the digest went out before its window ended"
    (digest,) = emails(world.smtp, 1, timeout=6)
    assert digest.address == "bob@example.org"
    text = digest.text
    assert text.index("commit three") < text.index("commit two") < text.index("commit one")
    # One digest only, and nothing for carol or dave: what comes before a probe to alice
    # (mailed at once) is that probe (and, at most, bob's next digest: of the probe only).
    world.log("probe")
    rest = mails_until(world.smtp, "alice@example.org", "[git] probe", "alice's probe")
    assert [m.address for m in rest if m.address != "bob@example.org"] == ["alice@example.org"]
    assert not [m for m in rest if m.address == "bob@example.org" and "commit" in m.text]

    assert world.serve.metric("notifier_messages_received_total") >= 2
    assert world.serve.metric("notifier_notifications_sent_total") >= 13
    assert world.serve.stop() == 0
    assert "Traceback" not in world.serve.log()


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_and_restart_lose_nothing(world: World) -> None:
    world.serve.start()
    # Mail and feed items go out from a child process of serve's.
    health = json.loads(world.serve.get("/healthz")[2])
    assert health["sender"]["destinations"] == ["email", "rss"]
    # The SMTP server is down: mails queue in the outbox, then the service dies.
    world.smtp.stop()
    world.log(*[f"queued {n}" for n in range(10)])
    wait_for(lambda: len(list(world.store().message_rows())) == 10, "10 messages recorded")
    assert len(world.history()) == 10
    # Mail goes out from a child process; it must die with the service, as a thread would.
    children = world.serve.children()
    assert children, "no SMTP sender process under notifier serve"
    world.serve.kill9()
    wait_for(lambda: not any(alive(pid) for pid in children), "the children to die with serve",
             10)
    world.smtp.start()
    world.serve.start()
    got = emails(world.smtp, 10)
    alice = sorted(first_lines(got, "alice@example.org"))
    assert alice == sorted(f"[git] queued {n}" for n in range(10))

    # A burst, and kill -9 while it is being handled: once some of it is recorded.
    world.log(*[f"burst {n}" for n in range(40)])
    wait_for(lambda: any(m.envelope["msg"]["log"].startswith("burst")
                         for m in world.store().message_rows()),
             "a message of the burst to be recorded", interval=0.005)
    world.serve.kill9()
    world.serve.start()
    stored = {m["msg"]["log"] for m in world.history() if m["msg"]["log"].startswith("burst")}
    assert stored, "nothing of the burst was recorded: there is nothing to check"
    want = {f"[git] {s}" for s in stored}
    mails_until(world.smtp, "alice@example.org", want,
                "every recorded message of the burst mailed after kill -9")
    # alice's feed has each of them too, once.
    token = json.loads(world.cli("users", "show", "alice", "--json").stdout)["feed_token"]

    def burst_titles() -> list[str]:
        feed = feedparser.parse(world.serve.get(f"/feeds/alice.atom?token={token}")[2])
        return [e.title for e in feed.entries if "burst" in e.title]

    wait_for(lambda: set(burst_titles()) >= want, "the burst in alice's feed")
    assert sorted(burst_titles()) == sorted(want)
    assert world.serve.stop() == 0


def test_running_service_follows_changes_rejects_junk_and_honours_unsubscribe(
        world: World) -> None:
    import urllib.request

    world.serve.start()
    # dave has no rule yet; one imported while the service runs applies at once.
    world.log("before dave's rule")
    assert sorted(m.address for m in emails(world.smtp, 1)) == ["alice@example.org"]
    rule = [{"user": "dave", "name": "all git", "track": {"kind": "topics", "patterns": [GIT]},
             "destinations": ["email"]}]
    world.cli("rules", "import", "-", input=json.dumps(rule))
    probes: list[str] = []

    def reaches_dave() -> bool:
        probes.append(f"after dave's rule {len(probes)}")
        world.log(probes[-1])
        return wait_for(lambda: world.recorded(probes[-1]), f"{probes[-1]!r} recorded") in \
            {row.msg_id for row in Outbox(world.store()).rows(user="dave")}

    wait_for(reaches_dave, "a message to reach dave's new rule", interval=0)
    mails_until(world.smtp, "dave@example.org", f"[git] {probes[-1]}", "dave's mail")

    # Junk on the bus is counted and skipped; the next good message still arrives.
    inbound = world.serve.config.read_text().split('relay_inbound = "')[1].split('"')[0]
    junk = RawPublisher(inbound)  # it waits until the relay subscribed
    try:
        junk.send(b"org.fedoraproject.dev.git.x", b"{not json")
        junk.send(b"one frame only")
        junk.send(b"org.fedoraproject.dev.git.x", b'{"msg": "' + b"x" * 1_100_000 + b'"}')
    finally:
        junk.close()
    world.log("after the junk")
    mails_until(world.smtp, "alice@example.org", "[git] after the junk", "the mail after the junk")
    assert world.serve.metric("notifier_messages_rejected_total") == 3
    for reason in ("json", "frames", "too-big"):
        assert f'reason="{reason}"' in world.serve.get("/metrics")[2].decode()

    # One-click unsubscribe (RFC 8058) from alice's mail disables her rule.
    world.log("last for alice")
    mail = next(m for m in mails_until(world.smtp, "alice@example.org", "[git] last for alice",
                                       "alice's last mail")
                if m.address == "alice@example.org" and "last for alice" in m.text)
    url = re.sub(r"[<>]", "", mail.raw.message["List-Unsubscribe"])
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    shown = json.loads(world.cli("rules", "show", "alice", "git").stdout)
    assert shown["disabled"] is True
    # The running service hears of it (it reads the change log every second): a message
    # recorded from then on has nothing for alice.
    probes.clear()

    def alice_left_out() -> bool:
        probes.append(f"probe {len(probes)}")
        world.log(probes[-1])
        return wait_for(lambda: world.recorded(probes[-1]), f"{probes[-1]!r} recorded") not in \
            {row.msg_id for row in Outbox(world.store()).rows(user="alice")}

    wait_for(alice_left_out, "alice's rule to be disabled in the running service", interval=0)
    world.log("alice unsubscribed")
    after = mails_until(world.smtp, "dave@example.org", "[git] alice unsubscribed",
                        "dave's mail after alice unsubscribed")
    # Mailed at once to dave only (bob's comes in his digest).
    assert [m.address for m in after if first_lines([m]) == ["[git] alice unsubscribed"]] == \
        ["dave@example.org"]
    msg_id = world.recorded("alice unsubscribed")
    assert msg_id is not None
    rows = {(row.user, row.destination) for row in Outbox(world.store()).rows()
            if row.msg_id == msg_id}
    assert ("dave", "email") in rows and not [user for user, _ in rows if user == "alice"]
    assert world.serve.stop() == 0
