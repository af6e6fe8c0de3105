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

from tests.conftest import free_port, run
from tests.integration.backends.peers_dbus import DesktopPeer
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.backends.peers_irc import IrcPeer
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


def emails(smtp: SmtpPeer, want: int, timeout: float = 20) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += smtp.received(0.2)
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
        for peer in (desktop, irc, smtp):
            peer.stop()


def wait_until_window_start(length: float) -> float:
    """Sleep until just after a window boundary; return when the next one starts."""
    now = time.time()
    if now % length > 0.3:
        time.sleep(length - now % length + 0.05)
    return (time.time() // length + 1) * length


def test_every_destination_gets_what_it_should(world: World) -> None:
    world.serve.start()
    token = json.loads(world.cli("users", "show", "alice", "--json").stdout)["feed_token"]
    stream = EventStream(f"http://{world.http}/users/alice/stream?token={token}")
    deadline = time.monotonic() + 10
    while world.serve.metric("notifier_streams_open") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
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
    lines = []
    deadline = time.monotonic() + 15
    while len(lines) < 6 and time.monotonic() < deadline:
        lines += world.irc.received(0.5)
    assert sorted((d.address, d.text.split("commit ")[-1]) for d in lines) == sorted(
        (nick, n) for nick in ("u_alice", "u_bob") for n in ("one", "two", "three"))

    # Desktop: alice's session bus.
    calls = []
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        calls += world.desktop.received(0.5)
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
    assert world.smtp.received(1.5) == []  # one digest only; nothing for carol or dave

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
    deadline = time.monotonic() + 20
    while len(world.history()) < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(world.history()) == 10
    # Mail goes out from a child process; it must die with the service, as a thread would.
    children = world.serve.children()
    assert children, "no SMTP sender process under notifier serve"
    world.serve.kill9()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], "a child outlived kill -9"
    world.smtp.start()
    world.serve.start()
    got = emails(world.smtp, 10)
    alice = sorted(m.text.splitlines()[0] for m in got if m.address == "alice@example.org")
    assert alice == sorted(f"[git] queued {n}" for n in range(10))

    # A burst, and kill -9 while it is being handled.
    world.log(*[f"burst {n}" for n in range(40)])
    world.serve.kill9()
    world.serve.start()
    stored = {m["msg"]["log"] for m in world.history() if m["msg"]["log"].startswith("burst")}
    deadline = time.monotonic() + 30
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen += [m.text.splitlines()[0] for m in world.smtp.received(0.5)
                 if m.address == "alice@example.org"]
        if {f"[git] {s}" for s in stored} <= set(seen):
            break
    missing = {f"[git] {s}" for s in stored} - set(seen)
    assert not missing, f"lost after kill -9: {sorted(missing)}"
    # alice's feed has each of them too, once.
    token = json.loads(world.cli("users", "show", "alice", "--json").stdout)["feed_token"]
    deadline = time.monotonic() + 10
    while True:
        entries = feedparser.parse(world.serve.get(f"/feeds/alice.atom?token={token}")[2]).entries
        titles = [e.title for e in entries if "burst" in e.title]
        if len(set(titles)) >= len(stored) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(titles) == sorted(f"[git] {s}" for s in stored)
    assert world.serve.stop() == 0


def test_running_service_follows_changes_rejects_junk_and_honours_unsubscribe(
        world: World) -> None:
    import urllib.request

    import zmq

    world.serve.start()
    # dave has no rule yet; one imported while the service runs applies at once.
    world.log("before dave's rule")
    assert sorted(m.address for m in emails(world.smtp, 1)) == ["alice@example.org"]
    rule = [{"user": "dave", "name": "all git", "track": {"kind": "topics", "patterns": [GIT]},
             "destinations": ["email"]}]
    world.cli("rules", "import", "-", input=json.dumps(rule))
    deadline = time.monotonic() + 10
    got: list[Any] = []
    while time.monotonic() < deadline and "dave@example.org" not in {m.address for m in got}:
        world.log("after dave's rule")
        got += emails(world.smtp, 2, timeout=2)
    assert "dave@example.org" in {m.address for m in got}

    # Junk on the bus is counted and skipped; the next good message still arrives.
    inbound = world.serve.config.read_text().split('relay_inbound = "')[1].split('"')[0]
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.connect(inbound)
    time.sleep(0.3)  # a raw PUB socket has no way to know the relay subscribed
    pub.send_multipart([b"org.fedoraproject.dev.git.x", b"{not json"])
    pub.send_multipart([b"one frame only"])
    pub.send_multipart([b"org.fedoraproject.dev.git.x", b'{"msg": "' + b"x" * 1_100_000 + b'"}'])
    pub.close()
    ctx.term()
    world.smtp.received(0.5)
    world.log("after the junk")
    texts = {m.text.splitlines()[0] for m in emails(world.smtp, 2)}
    assert "[git] after the junk" in texts
    assert world.serve.metric("notifier_messages_rejected_total") == 3
    for reason in ("json", "frames", "too-big"):
        assert f'reason="{reason}"' in world.serve.get("/metrics")[2].decode()

    # One-click unsubscribe (RFC 8058) from alice's mail disables her rule.
    world.log("last for alice")
    mail = next(m for m in emails(world.smtp, 2) if m.address == "alice@example.org")
    url = re.sub(r"[<>]", "", mail.raw.message["List-Unsubscribe"])
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    shown = json.loads(world.cli("rules", "show", "alice", "git").stdout)
    assert shown["disabled"] is True
    time.sleep(1.5)  # the change log is read every second
    world.log("alice unsubscribed")
    after = emails(world.smtp, 2, timeout=5)
    assert "alice@example.org" not in {m.address for m in after}
    assert {m.address for m in after} - {"bob@example.org"} == {"dave@example.org"}  # bob: digest
    assert world.serve.stop() == 0
