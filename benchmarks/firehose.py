#!/usr/bin/env python3
"""The IRC firehose in a storm: publish-to-seen delay and lines posted per second.

One run starts Debian's ``ngircd`` (its flood protection on) on a free
loopback port, a relay in this process, ``notifier firehose`` as a
subprocess posting one channel, and a second IRC client (the ``irc``
library) in that channel that timestamps every line it sees. Two phases:

1. **Baseline**: ``--baseline-rate`` messages/s (default 1, under the line
   rate, so every message gets a line of its own) for ``--baseline-seconds``
   (default 10).
2. **Storm**: ``--rate`` messages/s (default 200) for ``--seconds`` (default
   30), spread over ``--apps`` apps (default 4).

Each message's delay runs from the publish call to the moment the client
sees the line that carries it: its own line, or the fold line that counts it
(the bot keeps each app's messages in order, so a fold line of N messages of
an app carries that app's next N). Reported per phase: p50 and p99 delay,
lines posted per second, messages accounted for (posted or counted in a fold
line) out of those published, and whether the bot was ever disconnected.
The storm's figures are also given as ratios to the baseline.

Target: storm p99 <= max_delay + 5 s (max_delay is 30 s), every message
accounted for, and no disconnect. Exits 1 when a target is missed.

    .venv/bin/python benchmarks/firehose.py [--rate 200] [--seconds 30] [--apps 4]
        [--line-rate 2] [--baseline-rate 1] [--baseline-seconds 10]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

import irc.client  # noqa: E402
from jaraco.stream import buffer as irc_buffer  # noqa: E402

from notifier.bus.publisher import Publisher  # noqa: E402
from notifier.bus.relay import Relay  # noqa: E402
from notifier.config import config_from_dict  # noqa: E402

MAX_DELAY = 30.0
CHANNEL = "#firehose"
NICK = "firehose"
LINE = re.compile(r"^(\x03\d\d)?\[(?P<app>[\w-]+)\]")
FOLD = re.compile(r"^(\x03\d\d)?(?P<app>[\w-]+):(\x03)? (?P<n>\d+) more \(")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Watcher:
    """An IRC client in the channel recording (time, text) of the bot's lines, and its quits."""

    def __init__(self, port: int):
        self.reactor = irc.client.Reactor()
        self.conn = self.reactor.server()
        self.conn.buffer_class = irc_buffer.LenientDecodingLineBuffer
        self.lock = threading.Lock()
        self.lines: list[tuple[float, str]] = []
        self.quits = 0
        self.joined = threading.Event()
        self.welcome = threading.Event()
        self.bot_here = threading.Event()
        self.stop = False
        self.reactor.add_global_handler("welcome", lambda c, e: self.welcome.set())
        self.reactor.add_global_handler("pubnotice", self._line)
        self.reactor.add_global_handler("join", self._join)
        self.reactor.add_global_handler("quit", self._quit)
        self.reactor.add_global_handler("namreply", self._names)
        self.conn.connect("127.0.0.1", port, "watcher")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.welcome.wait(10):
            raise RuntimeError("the watcher could not register")
        self.conn.join(CHANNEL)
        if not self.joined.wait(10):
            raise RuntimeError("the watcher could not join")

    def _run(self) -> None:
        while not self.stop:
            self.reactor.process_once(0.01)

    def _line(self, conn: Any, event: Any) -> None:
        if event.source.nick == NICK:
            with self.lock:
                self.lines.append((time.monotonic(), event.arguments[0]))

    def _join(self, conn: Any, event: Any) -> None:
        if event.source.nick == "watcher":
            self.joined.set()
        elif event.source.nick == NICK:
            self.bot_here.set()

    def _names(self, conn: Any, event: Any) -> None:
        if NICK in event.arguments[2].replace("@", "").split():
            self.bot_here.set()

    def _quit(self, conn: Any, event: Any) -> None:
        if event.source.nick == NICK:
            self.quits += 1

    def since(self, index: int) -> list[tuple[float, str]]:
        with self.lock:
            return self.lines[index:]

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.conn.disconnect("bye")


def phase(name: str, publisher: Publisher, watcher: Watcher, rate: float, seconds: float,
          apps: list[str], settle: float) -> dict[str, Any]:
    """Publish at ``rate`` for ``seconds``; match lines to messages; the phase's figures."""
    first_line = len(watcher.since(0))
    sent: dict[str, deque[float]] = defaultdict(deque)
    total = int(rate * seconds)
    start = time.monotonic()
    for i in range(total):
        app = apps[i % len(apps)]
        at = start + i / rate
        ahead = at - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        sent[app].append(time.monotonic())
        publisher.publish("build.state.change" if i % 3 else "tag", {"log": f"{name} {i}"},
                          app)
    published = time.monotonic()

    def accounted(lines: list[tuple[float, str]]) -> int:
        n = 0
        for _, text in lines:
            fold = FOLD.match(text)
            n += int(fold["n"]) if fold else 1
        return n

    deadline = published + MAX_DELAY + settle
    while time.monotonic() < deadline and accounted(watcher.since(first_line)) < total:
        time.sleep(0.1)
    lines = watcher.since(first_line)
    delays: list[float] = []
    for seen, text in lines:
        fold, line = FOLD.match(text), LINE.match(text)
        app = (fold or line)["app"] if (fold or line) else ""
        for _ in range(int(fold["n"]) if fold else 1):
            if sent[app]:
                delays.append(seen - sent[app].popleft())
    span = (lines[-1][0] - lines[0][0]) if len(lines) > 1 else 1.0
    return {"published": total, "accounted": accounted(lines), "lines": len(lines),
            "folds": sum(1 for _, t in lines if FOLD.match(t)),
            "p50": percentile(delays, 50), "p99": percentile(delays, 99),
            "mean": statistics.fmean(delays) if delays else float("nan"),
            "lines_per_s": len(lines) / max(span, 1e-9), "publish_s": published - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--apps", type=int, default=4)
    parser.add_argument("--line-rate", type=float, default=2.0)
    parser.add_argument("--baseline-rate", type=float, default=1.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not shutil.which("ngircd"):
        print("ngircd is not installed (Debian package ngircd; dev/setup installs it)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="firehose-bench-"))
    irc_port = free_port()
    (tmp / "ngircd.conf").write_text(
        f"[Global]\nName = irc.test\nInfo = bench\nListen = 127.0.0.1\nPorts = {irc_port}\n"
        f"MotdPhrase = bench\nPidFile = {tmp / 'ngircd.pid'}\nServerUID = root\n"
        "ServerGID = root\n[Options]\nPAM = no\nIdent = no\nDNS = no\n")
    inbound, outbound = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    (tmp / "notifier.toml").write_text(
        f'[bus]\nrelay_inbound = "{inbound}"\nendpoints = ["{outbound}"]\n'
        f"[firehose]\n[[firehose.networks]]\nname = \"bench\"\nhost = \"127.0.0.1\"\n"
        f"port = {irc_port}\nnick = \"{NICK}\"\nline_rate = {args.line_rate}\nburst = 4\n"
        f"[[firehose.networks.channels]]\nname = \"{CHANNEL}\"\nmax_delay = {MAX_DELAY}\n"
        'exclude = {applications = ["warmup"]}\n')
    ngircd = subprocess.Popen(["ngircd", "-n", "-f", str(tmp / "ngircd.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    relay = Relay(inbound, outbound)
    relay_thread = relay.start_thread()
    bot = None
    watcher = None
    try:
        wait_port(irc_port)
        watcher = Watcher(irc_port)
        log = open(tmp / "firehose.log", "wb")
        bot = subprocess.Popen([str(BIN / "notifier"), "firehose", "--config",
                                str(tmp / "notifier.toml")], stdout=log, stderr=log)
        publisher = Publisher(config_from_dict(
            {"bus": {"relay_inbound": inbound, "endpoints": [outbound],
                     "publish_timeout": 30.0}}))
        if not watcher.bot_here.wait(30):
            raise RuntimeError("the bot did not join:\n" + (tmp / "firehose.log").read_text())
        # the bot's subscription takes a moment: warm up until it surely has it
        for _ in range(30):
            publisher.publish("warmup", {"log": "warm"}, "warmup")
            time.sleep(0.1)
        apps = [f"app{i}" for i in range(args.apps)]
        print(f"ngircd on 127.0.0.1:{irc_port}; notifier firehose pid {bot.pid}; line rate "
              f"{args.line_rate}/s; max_delay {MAX_DELAY:g} s")
        base = phase("baseline", publisher, watcher, args.baseline_rate,
                     args.baseline_seconds, apps, 5.0)
        storm = phase("storm", publisher, watcher, args.rate, args.seconds, apps, 10.0)
        publisher.close()
    finally:
        if bot is not None:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(20)
            except subprocess.TimeoutExpired:
                bot.kill()
        if watcher is not None:
            watcher.close()
        relay.stop()
        relay_thread.join(5)
        ngircd.terminate()
        ngircd.wait(10)
    log_text = (tmp / "firehose.log").read_text(errors="replace")
    disconnected = watcher.quits > 1 or "connection lost" in log_text
    print(f"{'phase':<10}{'rate/s':>8}{'msgs':>8}{'accounted':>11}{'lines':>7}{'folds':>7}"
          f"{'lines/s':>9}{'p50 s':>8}{'p99 s':>8}")
    for name, rate, r in (("baseline", args.baseline_rate, base), ("storm", args.rate, storm)):
        print(f"{name:<10}{rate:>8g}{r['published']:>8}{r['accounted']:>11}{r['lines']:>7}"
              f"{r['folds']:>7}{r['lines_per_s']:>9.2f}{r['p50']:>8.2f}{r['p99']:>8.2f}")
    print(f"storm / baseline: p50 x{storm['p50'] / base['p50']:.2f}, "
          f"p99 x{storm['p99'] / base['p99']:.2f}, lines/s x"
          f"{storm['lines_per_s'] / base['lines_per_s']:.2f}, messages/s x"
          f"{args.rate / args.baseline_rate:g}")
    print(f"disconnected: {'yes' if disconnected else 'no'}")
    misses = []
    if storm["p99"] > MAX_DELAY + 5:
        misses.append(f"storm p99 {storm['p99']:.1f} s > {MAX_DELAY + 5:g} s")
    if storm["accounted"] != storm["published"] or base["accounted"] != base["published"]:
        misses.append("messages not accounted for")
    if disconnected:
        misses.append("the bot was disconnected")
    print("targets: " + ("met" if not misses else "MISSED: " + "; ".join(misses)))
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
