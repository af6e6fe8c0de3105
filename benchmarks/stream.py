#!/usr/bin/env python3
"""Live streams: many open at once, a steady flow of messages, then a reconnect storm.

One run starts ``notifier serve`` (a subprocess, with its embedded relay) on a
fresh SQLite database holding as many users as the largest step, each
following a package of their own with a rule whose only destination is
``desktop``, so what reaches them goes to their live stream
(``/users/<user>/stream``). For each step of ``--streams`` (default 2,000 then
10,000):

1. **Steady**: that many streams are opened, one per user, by client
   processes (asyncio on raw sockets, HTTP/1.0 so the event stream arrives
   unframed). Messages are published at ``--rate`` messages/s (default 50)
   for ``--seconds`` (default 20); each names the packages of 10 of the
   connected users, so it reaches those 10 streams. Measured: deliveries
   lost (a stream never got an event owed to it) and duplicated, the
   latency from the publish call to the client's read of the event (p50,
   p99), and serve's memory (RSS, with its child processes), CPU (in cores)
   and threads.
2. **Reconnect storm**: ``notifier serve`` is stopped and started again (as
   in a restart of the service; every stream drops), ``--storm-seconds``
   (default 2) of messages are published while no stream is connected, then
   every stream reconnects at once with ``Last-Event-ID``. A stream is back
   once it has its answer and every event it missed; the target is every
   stream back within 10 s. Then 2 s more are published live, and lost and
   duplicated are counted over the whole step, across the reconnection.

Baseline, measured in the same run: the floor, the same service with one
stream open and the same rate (each message reaching that stream and nine
users who have none), so the latency ratios show what the number of streams
costs. Targets on a 2-core machine: 0 lost, 0 duplicated, p99 <= 250 ms at
2,000 streams and <= 1 s at 10,000, every stream back within 10 s of a
storm. The publisher and the clients run on the same machine as the service
and share its cores; the clients' CPU is printed too.

    .venv/bin/python benchmarks/stream.py [--streams 2000,10000] [--rate 50]
        [--seconds 20] [--storm-seconds 2] [--clients 4] [--profile DIR] [--keep] [--quick]

``--inbox`` runs the same steps on the inbox's stream
(``/api/v1/notifications/stream?token=``, a read token per user) instead:
every notification also lands in the inbox, so the same messages reach it.

``--profile DIR`` records serve with py-spy during each storm (``pip install
py-spy``) and prints where its time went.

``--quick`` is a small smoke run (200 streams, 3 s) whose targets are shown
but not enforced. The full run exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from benchmarks.e2e import (  # noqa: E402
    Profile,
    children,
    cpu_seconds,
    loadavg,
    paced,
    percentile,
)
from notifier.bus.publisher import Publisher  # noqa: E402
from notifier.config import config_from_dict  # noqa: E402

FANOUT = 10
STORM_TARGET_S = 10.0
#: the p99 target (ms) for a number of streams: the first whose bound it is within
P99_TARGETS_MS = ((2000, 250.0), (10000, 1000.0))

_ID = re.compile(rb"^id: (\d+)$", re.M)
_SEQ = re.compile(rb'"topic":"[^"]*\.seq(\d+)"')


def p99_target(streams: int) -> float:
    return next((ms for bound, ms in P99_TARGETS_MS if streams <= bound), P99_TARGETS_MS[-1][1])


# -- the client processes -----------------------------------------------------------


class Stream:
    """One user's stream as a client sees it, across reconnections."""

    def __init__(self, user: str, path: str):
        self.user = user
        #: the stream's path and query, its token in it
        self.path = path
        self.last: int | None = None
        #: (seq, received at) of every event, on every connection
        self.received: list[tuple[int, float]] = []
        #: when each connection got its answer (wall clock)
        self.answered: list[float] = []
        self.errors: list[str] = []


class Clients:
    """Streams of one client process; commands arrive on ``conn`` (see :func:`client_main`)."""

    def __init__(self, conn: Connection, host: str, port: int, users: list[tuple[str, str]]):
        self.conn = conn
        self.host = host
        self.port = port
        self.streams = [Stream(user, path) for user, path in users]
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[Any] = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: commands.put_nowait(self.conn.recv()))
        while True:
            command, arg = await commands.get()
            if command == "open":  # arg: resume with Last-Event-ID
                for stream in self.streams:
                    task = loop.create_task(self.follow(stream, resume=arg))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                self.conn.send("started")
            elif command == "count":
                self.conn.send((sum(len(s.received) for s in self.streams),
                                sum(len(s.answered) for s in self.streams),
                                sum(len(s.errors) for s in self.streams), len(self.tasks)))
            elif command == "close":
                for task in list(self.tasks):
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)
                self.conn.send("closed")
            elif command == "report":
                self.conn.send([(s.user, s.received, s.answered, s.errors)
                                for s in self.streams])
            elif command == "quit":
                return

    async def follow(self, stream: Stream, resume: bool) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            resume_header = (f"Last-Event-ID: {stream.last}\r\n"
                             if resume and stream.last is not None else "")
            writer.write(f"GET {stream.path} HTTP/1.0\r\n"
                         f"Host: bench\r\n{resume_header}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                stream.errors.append(head.split(b"\r\n", 1)[0].decode())
                return
            stream.answered.append(time.time())
            pending = b""
            while data := await reader.read(65536):
                now = time.time()
                *blocks, pending = (pending + data).split(b"\n\n")
                for block in blocks:
                    # As EventSource does: an id, even alone, is where to resume.
                    row = _ID.search(block)
                    if row:
                        stream.last = int(row.group(1))
                    seq = _SEQ.search(block)
                    if seq:
                        stream.received.append((int(seq.group(1)), now))
        except (OSError, asyncio.IncompleteReadError) as exc:
            stream.errors.append(type(exc).__name__)
        finally:
            if writer is not None:
                writer.close()


def client_main(conn: Connection, host: str, port: int, users: list[tuple[str, str]]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(Clients(conn, host, port, users).run())


class ClientPool:
    """``len(users)`` streams spread over ``processes`` client processes."""

    def __init__(self, host: str, port: int, users: list[tuple[str, str]], processes: int):
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs = []
        share = -(-len(users) // processes)
        for k in range(processes):
            part = users[k * share:(k + 1) * share]
            if not part:
                break
            ours, theirs = context.Pipe()
            proc = context.Process(target=client_main, args=(theirs, host, port, part),
                                   daemon=True)
            proc.start()
            self.conns.append(ours)
            self.procs.append(proc)

    def ask(self, command: str, arg: Any = None) -> list[Any]:
        for conn in self.conns:
            conn.send((command, arg))
        return [conn.recv() for conn in self.conns]

    def counts(self) -> tuple[int, int, int, int]:
        got = self.ask("count")
        return tuple(sum(c[i] for c in got) for i in range(4))  # type: ignore[return-value]

    def report(self) -> list[tuple[str, list[tuple[int, float]], list[float], list[str]]]:
        return [row for part in self.ask("report") for row in part]

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs if p.pid is not None)

    def close(self) -> None:
        self.ask("close")
        for conn in self.conns:
            conn.send(("quit", None))
        for proc in self.procs:
            proc.join(10)


# -- the service ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``notifier serve`` in a subprocess, restartable, logging to a file."""

    def __init__(self, conf: Path, http: str, log: Path):
        self.conf, self.http, self.log = conf, http, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([str(BIN / "notifier"), "serve", "--config",
                                          str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"notifier serve exited {self.proc.returncode}:\n"
                                   f"{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.http}/healthz", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not answer:\n{self.tail()}") from None
                time.sleep(0.1)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=30) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"))

    def usage(self) -> dict[str, float]:
        """RSS (MB, with its children), threads, and CPU seconds so far (with its children)."""
        assert self.proc is not None
        pids = [self.proc.pid, *children(self.proc.pid)]
        rss = threads = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("Threads:") and pid == self.proc.pid:
                    threads = int(line.split()[1])
        return {"rss_mb": rss / 1024, "threads": threads,
                "cpu": cpu_seconds(self.proc.pid, with_children=True)}


# -- the run --------------------------------------------------------------------------


class Run:
    """Publishing and accounting: who each message went to, and when."""

    def __init__(self, publisher: Publisher, names: list[str], rng: random.Random):
        self.publisher = publisher
        self.names = names
        self.rng = rng
        self.sent_at: dict[int, float] = {}
        self.owed: dict[str, list[int]] = {}
        self.seq = 0

    def publish(self, rate: float, seconds: float, connected: list[str]) -> float:
        """Messages to 10 users each (the connected ones first); the rate held."""
        others = [n for n in self.names if n not in set(connected)][:FANOUT]

        def send(_: int) -> None:
            seq = self.seq
            self.seq += 1
            chosen = (self.rng.sample(connected, FANOUT) if len(connected) >= FANOUT
                      else connected + others[:FANOUT - len(connected)])
            for user in chosen:
                self.owed.setdefault(user, []).append(seq)
            self.sent_at[seq] = time.time()
            self.publisher.publish(f"seq{seq}", {"seq": seq, "packages": [
                f"s-{user}" for user in chosen]}, "bench")

        return paced(rate, max(1, round(rate * seconds)), send)

    def owed_to(self, users: list[str], since: int) -> int:
        return sum(1 for u in users for s in self.owed.get(u, ()) if s >= since)


def wait_for_deliveries(pool: ClientPool, owed: int, quiet: float = 10.0) -> int:
    """Wait until ``owed`` events arrived, or nothing new for ``quiet`` seconds."""
    last, deadline = -1, time.monotonic() + quiet
    while True:
        received = pool.counts()[0]
        if received >= owed or time.monotonic() > deadline:
            return received
        if received != last:
            last, deadline = received, time.monotonic() + quiet
        time.sleep(0.2)


def account(report: list[Any], run: Run, since: int, until: int | None = None
            ) -> dict[str, Any]:
    """Lost, duplicated and latencies (ms) of the events owed from seq ``since`` on."""
    lost = duplicated = 0
    latencies: list[float] = []
    for user, received, _, _ in report:
        owed = {s for s in run.owed.get(user, ()) if s >= since}
        got = Counter(seq for seq, _ in received if seq >= since)
        lost += len(owed - set(got))
        duplicated += sum(n - 1 for n in got.values() if n > 1)
        latencies += [(at - run.sent_at[seq]) * 1000 for seq, at in received
                      if seq >= since and (until is None or seq < until)]
    return {"lost": lost, "duplicated": duplicated, "latencies": latencies}


def steady(service: Service, run: Run, users: list[tuple[str, str]], rate: float,
           seconds: float, processes: int) -> tuple[ClientPool, dict[str, Any]]:
    host, port = service.http.rsplit(":", 1)
    pool = ClientPool(host, int(port), users, max(1, min(processes, len(users))))
    pool.ask("open", False)
    deadline = time.monotonic() + 120
    while pool.counts()[1] < len(users):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {pool.counts()[1]} of {len(users)} streams opened")
        time.sleep(0.2)
    while service.metric("notifier_streams_open") < len(users):
        time.sleep(0.1)
    names = [u for u, _ in users]
    first = run.seq
    before, clients_before, started = service.usage(), pool.cpu(), time.monotonic()
    held = run.publish(rate, seconds, names)
    wait_for_deliveries(pool, run.owed_to(names, first))
    elapsed = time.monotonic() - started
    after = service.usage()
    result = account(pool.report(), run, first)
    result.update(held=held, rss_mb=after["rss_mb"], threads=after["threads"],
                  cpu=(after["cpu"] - before["cpu"]) / elapsed,
                  clients_cpu=(pool.cpu() - clients_before) / elapsed, first=first)
    return pool, result


def storm(service: Service, run: Run, pool: ClientPool, names: list[str], rate: float,
          seconds: float, first: int, profile: Path | None = None) -> dict[str, Any]:
    """Restart serve, publish while nobody is connected, then everyone reconnects at once."""
    service.stop()
    while pool.counts()[3]:  # every client saw its stream end
        time.sleep(0.1)
    service.start()
    missed_from = run.seq
    run.publish(rate, seconds, names)
    queued = run.seq - missed_from
    while service.metric("notifier_notifications_queued_total") < queued * FANOUT:
        time.sleep(0.1)
    answered_before = pool.counts()[1]
    assert service.proc is not None
    with Profile(profile, service.proc.pid).phase(f"storm-{len(names)}"):
        go = time.time()
        pool.ask("open", True)
        deadline = time.monotonic() + 60
        owed = run.owed_to(names, first)
        while time.monotonic() < deadline:
            received, answered, _, _ = pool.counts()
            if answered - answered_before >= len(names) and received >= owed:
                break
            time.sleep(0.1)
    live_from = run.seq
    run.publish(rate, 2.0, names)
    wait_for_deliveries(pool, run.owed_to(names, first))
    report = pool.report()
    back: list[float] = []
    for _, received, answered, _ in report:
        answer = next((t for t in answered if t >= go), None)
        if answer is None:
            back.append(float("inf"))
            continue
        missed = [at for seq, at in received if missed_from <= seq < live_from]
        back.append(max([answer, *missed]) - go)
    totals = account(report, run, first)
    return {"back": back, "within": sum(1 for b in back if b <= STORM_TARGET_S),
            "lost": totals["lost"], "duplicated": totals["duplicated"],
            "missed_events": run.owed_to(names, missed_from) - run.owed_to(names, live_from),
            "errors": sum(len(e) for *_, e in report)}


# -- set-up ---------------------------------------------------------------------------


def setup(workdir: Path, users: int, inbox: bool = False) -> tuple[Path, str, dict[str, Any]]:
    http = f"127.0.0.1:{free_port()}"
    data = {"database_url": f"sqlite:///{workdir / 'notifier.db'}",
            "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                    "endpoints": [f"tcp://127.0.0.1:{free_port()}"], "publish_timeout": 30.0},
            "http": {"listen": http, "max_connections": users + 1000},
            "email": {"maildir": str(workdir / "Maildir")}}
    conf = workdir / "notifier.toml"
    conf.write_text(
        f"database_url = {json.dumps(data['database_url'])}\n[bus]\n"
        f"relay_inbound = {json.dumps(data['bus']['relay_inbound'])}\n"
        f"endpoints = {json.dumps(data['bus']['endpoints'])}\npublish_timeout = 30.0\n"
        f"[http]\nlisten = {json.dumps(http)}\nmax_connections = {users + 1000}\n"
        f"[email]\nmaildir = {json.dumps(data['email']['maildir'])}\n"
        # every stream opens from one address, at once after a restart
        + ("[web]\naddress_rate = 0\n" if inbox else "") +
        "[[meta.mappings]]\n"
        'topic = "org.fedoraproject.dev.bench.*"\napp = "bench"\nsummary = "seq={seq}"\n'
        'packages_paths = ["packages"]\n')
    names = [f"u{i:05d}" for i in range(users)]
    (workdir / "users.json").write_text(json.dumps(
        [{"name": n, "emails": [], "ircnicks": [], "groups": []} for n in names]))
    (workdir / "rules.json").write_text(json.dumps(
        [{"user": n, "name": "mine", "track": {"kind": "artifacts-followed",
                                                "packages": [f"s-{n}"]},
          "destinations": ["desktop"]} for n in names]))
    for what in ("users", "rules"):
        result = subprocess.run([str(BIN / "notifier"), what, "import",
                                 str(workdir / f"{what}.json"), "--config", str(conf)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{what} import failed:\n{result.stderr}")
    return conf, http, data


def stream_paths(conf: Path, inbox: bool) -> list[tuple[str, str]]:
    """Each user and the path of their stream: the desktop one with their feed token, or
    the inbox's with a read token made for them."""
    from notifier.config import load_config
    from notifier.storage import Store
    from notifier.storage.credentials import Credentials

    with Store.from_config(load_config(conf)) as store:
        users = [(u["name"], u["feed_token"]) for u in store.list_users()]
        if not inbox:
            return [(user, f"/users/{user}/stream?token={token}") for user, token in users]
        credentials = Credentials(store)
        return [(user, "/api/v1/notifications/stream?token="
                 + credentials.create_token(user, "bench", "read")[0]) for user, _ in users]


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="2000,10000",
                        help="numbers of streams, one step each, comma-separated")
    parser.add_argument("--rate", type=float, default=50.0, help="messages/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of publishing")
    parser.add_argument("--storm-seconds", type=float, default=2.0,
                        help="seconds of messages published while every stream is down")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record serve with py-spy during each storm (pip install py-spy)")
    parser.add_argument("--inbox", action="store_true",
                        help="the inbox's streams (/api/v1/notifications/stream)")
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run; targets shown, not enforced")
    args = parser.parse_args()
    steps = [int(n) for n in args.streams.split(",")]
    if args.quick:
        steps, args.seconds, args.storm_seconds = [200], 3.0, 1.0
    workdir = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    print(f"stream benchmark{' (inbox)' if args.inbox else ''}: {os.cpu_count()} cores, "
          f"load average {loadavg()}; "
          f"streams {', '.join(f'{n:,}' for n in steps)}; {args.rate:g} msg/s for "
          f"{args.seconds:g} s, each message to {FANOUT} streams")
    conf, http, data = setup(workdir, max(steps) + FANOUT, args.inbox)
    users = stream_paths(conf, args.inbox)
    service = Service(conf, http, workdir / "serve.log")
    service.start()
    publisher = Publisher(config_from_dict(data, str(conf)))
    run = Run(publisher, [u for u, _ in users], random.Random(1))
    results: list[dict[str, Any]] = []
    failed = False
    try:
        pool, floor = steady(service, run, users[:1], args.rate, args.seconds, 1)
        pool.close()
        f50, f99 = ms(floor["latencies"], 50), ms(floor["latencies"], 99)
        print(f"\nbaseline (floor): the same service with 1 stream: p50 {f50:.1f} ms, "
              f"p99 {f99:.1f} ms, lost {floor['lost']}, duplicated {floor['duplicated']}")
        print(f"\n{'streams':>8} {'held/s':>7} {'events':>8} {'lost':>5} {'dup':>4} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'x floor':>8} {'RSS MB':>7} {'CPU':>5} "
              f"{'thr':>4} {'clients CPU':>11}")
        for n in steps:
            pool, result = steady(service, run, users[:n], args.rate, args.seconds,
                                  args.clients)
            lat = result["latencies"]
            p50, p99 = ms(lat, 50), ms(lat, 99)
            print(f"{n:>8,} {result['held']:>7.1f} {len(lat):>8,} {result['lost']:>5} "
                  f"{result['duplicated']:>4} {p50:>8.1f} {p99:>8.1f} "
                  f"{p99 / f99 if f99 else float('nan'):>7.1f}x {result['rss_mb']:>7.0f} "
                  f"{result['cpu']:>5.2f} {result['threads']:>4} {result['clients_cpu']:>11.2f}")
            try:
                st = storm(service, run, pool, [u for u, _ in users[:n]], args.rate,
                           args.storm_seconds, result["first"], args.profile)
            finally:
                pool.close()
            back = sorted(st["back"])
            print(f"{'':>8} storm: restart, {st['missed_events']:,} events missed while down; "
                  f"{st['within']:,}/{n:,} back within {STORM_TARGET_S:g} s (p50 "
                  f"{ms(back, 50):.2f} s, slowest {back[-1]:.2f} s); over the step: lost "
                  f"{st['lost']}, duplicated {st['duplicated']}, client errors {st['errors']}")
            results.append({"streams": n, "p50": p50, "p99": p99, **{
                k: result[k] for k in ("lost", "duplicated", "rss_mb", "cpu", "threads")},
                "storm": {k: st[k] for k in ("within", "lost", "duplicated")}})
    finally:
        publisher.close()
        code = service.stop()
        if code != 0:
            print(f"notifier serve exited {code}:\n{service.tail()}")
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ntargets ({'--quick: not enforced' if args.quick else 'full run'}); "
          f"load average at the end {loadavg()}")
    for r in results:
        n, target = r["streams"], p99_target(r["streams"])
        checks = [
            (f"{n:,} streams: lost, duplicated", f"{r['lost'] + r['storm']['lost']}, "
             f"{r['duplicated'] + r['storm']['duplicated']}", "0, 0",
             r["lost"] + r["storm"]["lost"] + r["duplicated"] + r["storm"]["duplicated"] == 0),
            (f"{n:,} streams: p99", f"{r['p99']:.0f} ms", f"<= {target:g} ms",
             r["p99"] <= target),
            (f"{n:,} streams: back after a storm", f"{r['storm']['within']:,}/{n:,}",
             f"all within {STORM_TARGET_S:g} s", r["storm"]["within"] == n),
        ]
        for name, measured, goal, ok in checks:
            failed |= not ok
            print(f"  {name:<36} {measured:>12}  {goal:<20} {'PASS' if ok else 'FAIL'}")
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
