#!/usr/bin/env python3
"""The API: rule previews over a large history, and many clients while the bus is busy.

1. **Rule preview.** A fresh SQLite database (or ``--database-url``) is
   filled with stored messages spread over the last 7 days, up to each size
   of ``--sizes`` in turn (default 100,000 then 1,000,000; the second adds to
   the first). The mix is Fedora-like: 14 applications of very different
   volumes, 5,000 people and 20,000 packages chosen with skewed (Zipf-like)
   odds, one or two packages and users per message, some groups, severities
   in headers. Messages go in through :meth:`Store.store_messages` with the
   service's describer, as ``notifier history import`` writes them (index
   included), 5,000 per transaction, with a progress bar. Package owners
   are skewed too: a few people own hundreds of packages, most a handful.

   Then ``notifier serve`` runs on it and ``POST /api/v1/rule-preview``
   (``since`` 7d, ``limit`` 50) is sent ``--requests`` times (default 40,
   after 5 for warm-up) for each track kind, each time with a different
   rule (a different owner, group, package, person or topic pattern, with
   and without filters), one request at a time. Measured: p50 and p95 of
   the response time, and the matches found. Targets: p95 <= 300 ms at
   100,000 messages and <= 1 s at 1,000,000.

   Baseline, in the same run and on the same data: the old preview (every
   stored message of the 7 days described and matched,
   :func:`notifier.rules.preview.scan`), in this process, without HTTP, for
   one rule per kind at the first size and for ``--baseline-rules-large``
   (default 1) at the others, as it takes about a minute per rule at a
   million. Its ratio to the indexed preview's p50 is printed.

2. **Many clients while the bus is busy** (at the first size): messages are
   published at ``--rate`` (default 500) messages/s while ``--clients``
   (default 200) concurrent clients, each with a token of its own and one keep-alive
   connection (a plain HTTP/1.1 client, cheap so that the clients measure the service), ask
   ``GET /api/v1/users/me`` and, when the service has it,
   ``GET /api/v1/notifications`` (the inbox), each client pausing
   ``--think`` seconds (default 1, jittered) between requests, for
   ``--load-seconds`` (default 20). The clients run in a process of their
   own (asyncio). Target: p99 <= 100 ms for each route.
   Baselines: the same clients with nothing published; and the same clients and
   traffic with HTTP served from a thread of ``notifier serve`` (``[http] process =
   false``), as before HTTP had a process of its own.

    .venv/bin/python benchmarks/api.py [--sizes 100000,1000000] [--requests 40]
        [--clients 200] [--rate 500] [--load-seconds 20] [--database-url URL]
        [--keep] [--quick]

``--quick`` is a small smoke run (2,000 messages, 5 requests per kind, 20
clients for 3 s) whose targets are shown but not enforced. The full run
exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import click  # noqa: E402
import httpx  # noqa: E402

from benchmarks.e2e import Service, free_port, loadavg, paced, percentile  # noqa: E402
from notifier.bus.publisher import Publisher  # noqa: E402
from notifier.config import config_from_dict, load_config  # noqa: E402
from notifier.meta import Describer  # noqa: E402
from notifier.rules import parse_rule  # noqa: E402
from notifier.rules.preview import scan  # noqa: E402
from notifier.storage import Store  # noqa: E402
from notifier.storage.credentials import Credentials  # noqa: E402

WEEK = 7 * 86400
KINDS = ("artifacts-owned", "artifacts-group-owned", "artifacts-followed", "related-events",
         "users-followed", "topics")
#: p95 targets (ms) by size: the first whose bound the size is within
P95_TARGETS_MS = ((100_000, 300.0), (1_000_000, 1000.0))
P99_LOAD_MS = 100.0
APPS = {"bodhi": 12, "koji": 30, "copr": 20, "pagure": 8, "distgit": 10, "fas": 2,
        "buildsys": 6, "anitya": 4, "ci": 5, "mdapi": 1, "badges": 1, "wiki": 0.5,
        "planet": 0.3, "nuancier": 0.2}
EVENTS = ["build.state.change", "update.comment", "update.request.testing", "commit",
          "pull-request.new", "tag", "receive"]


def p95_target(size: int) -> float:
    return next((ms for bound, ms in P95_TARGETS_MS if size <= bound), P95_TARGETS_MS[-1][1])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Mix:
    """The people, packages, groups and owners of the history; messages about them."""

    def __init__(self, people: int, packages: int, groups: int, seed: int = 12):
        self.rnd = random.Random(seed)
        self.people = [f"user{i:05d}" for i in range(people)]
        self.packages = [f"pkg{i:05d}" for i in range(packages)]
        self.groups = [f"sig{i:02d}" for i in range(groups)]
        self._people_w = list(itertools.accumulate(1 / (i + 1) ** 0.9 for i in range(people)))
        self._pkg_w = list(itertools.accumulate(1 / (i + 1) ** 0.9 for i in range(packages)))
        self.apps = list(APPS)
        self._app_w = list(itertools.accumulate(APPS.values()))

    def person(self) -> str:
        return self.rnd.choices(self.people, cum_weights=self._people_w)[0]

    def package(self) -> str:
        return self.rnd.choices(self.packages, cum_weights=self._pkg_w)[0]

    def owners(self) -> dict[str, Any]:
        """Each package: one or two owning people (a few own hundreds), a group for some."""
        out: dict[str, Any] = {}
        for package in self.packages:
            users = sorted({self.person() for _ in range(self.rnd.choice((1, 1, 2)))})
            entry: dict[str, Any] = {"users": users}
            if self.rnd.random() < 0.3:
                entry["groups"] = [self.rnd.choice(self.groups)]
            out[package] = entry
        return out

    def messages(self, count: int, now: float, start: int) -> list[dict[str, Any]]:
        rnd = self.rnd
        out = []
        for i in range(start, start + count):
            app = rnd.choices(self.apps, cum_weights=self._app_w)[0]
            agent = self.person()
            body: dict[str, Any] = {
                "agent": agent, "users": [self.person()] if rnd.random() < 0.4 else [],
                "packages": [self.package() for _ in range(rnd.choice((0, 1, 1, 1, 2)))],
                "text": f"{agent} did something to message {i}",
                "url": f"https://example.org/{app}/{i}"}
            if rnd.random() < 0.1:
                body["groups"] = [rnd.choice(self.groups)]
            envelope: dict[str, Any] = {
                "topic": f"org.fedoraproject.prod.{app}.{rnd.choice(EVENTS)}",
                "msg_id": f"bench-{i}", "timestamp": now - rnd.uniform(0, WEEK), "msg": body}
            if rnd.random() < 0.2:
                envelope["headers"] = {"fedora_messaging_severity": rnd.choice((10, 30, 40))}
            out.append(envelope)
        return out

    def rule(self, kind: str, i: int, owners: dict[str, Any]) -> dict[str, Any]:
        """The ``i``-th varied rule of ``kind``."""
        rnd = random.Random(f"{kind}-{i}")
        track: dict[str, Any] = {"kind": kind}
        if kind == "artifacts-owned":
            # Heavy owners first: the people owning the most are the slow case.
            track["users"] = [self.people[i % 50]]
        elif kind == "artifacts-group-owned":
            track["groups"] = [self.groups[i % len(self.groups)]]
        elif kind == "artifacts-followed":
            track["packages"] = [self.packages[rnd.randrange(0, 2000 if i % 2 else 50)]
                                 for _ in range(rnd.randint(1, 5))]
        elif kind == "users-followed":
            track["users"] = [self.people[rnd.randrange(0, 3000 if i % 2 else 30)]
                              for _ in range(rnd.randint(1, 3))]
        elif kind == "topics":
            app = self.apps[i % len(self.apps)]
            track["patterns"] = [rnd.choice([f"org.fedoraproject.prod.{app}.*",
                                             f"*.{app}.*", f"*.{rnd.choice(EVENTS)}",
                                             "org.fedoraproject.*"])]
        filters: dict[str, Any] = {}
        if i % 3 == 1:
            filters["severities"] = ["warning", "error"]
        if i % 3 == 2:
            filters["applications"] = rnd.sample(self.apps[:6], 2)
        user = self.people[rnd.randrange(0, 100 if i % 2 else len(self.people))]
        return {"user": user, "name": f"{kind}-{i}", "track": track, "filters": filters,
                "destinations": ["email"]}


def write_config(path: Path, db_url: str, bus: tuple[str, str], http: str,
                 http_process: bool = True) -> Path:
    path.write_text(
        f"database_url = \"{db_url}\"\n"
        "[bus]\n"
        f'relay_inbound = "{bus[0]}"\n'
        f'endpoints = ["{bus[1]}"]\n'
        "publish_timeout = 30.0\n"
        "[http]\n"
        f'listen = "{http}"\n'
        f"process = {'true' if http_process else 'false'}\n"
        "[web]\n"
        "user_rate = 0\n"
        "address_rate = 0\n"
        "[meta]\n"
        "use_fedmsg_meta = false\n"
        "use_fedora_messaging = false\n"
        "[[meta.mappings]]\n"
        'topic = "org.fedoraproject.*"\n'
        'agent_path = "agent"\n'
        'usernames_paths = ["agent", "users"]\n'
        'packages_paths = ["packages"]\n'
        'groups_paths = ["groups"]\n'
        'summary_path = "text"\n'
        'link_path = "url"\n')
    return path


def fill(store: Store, describer: Describer, mix: Mix, have: int, size: int,
         now: float) -> float:
    """Store messages up to ``size``, with their index; the seconds it took."""
    started = time.perf_counter()
    batch = 5000
    with click.progressbar(length=size - have, label=f"storing {size - have:,} messages",
                           file=sys.stderr, show_pos=True) as bar:
        for start in range(have, size, batch):
            count = min(batch, size - start)
            store.store_messages(mix.messages(count, now, start), describer.describe)
            bar.update(count)
    return time.perf_counter() - started


def ingest_cost(config: Any, workdir: Path, mix: Mix, count: int) -> dict[str, float]:
    """Messages/s the ingest's history write holds without and with the index, side by side.

    The pipeline's own call (:meth:`Outbox.record_and_claim`, batches of 500,
    no notifications), on fresh SQLite files; the messages are described
    beforehand, as the pipeline has described them already when it records.
    """
    from notifier.storage.outbox import Outbox

    describer = Describer(config)
    envelopes = mix.messages(count, time.time(), 50_000_000)
    described = [describer.describe(e) for e in envelopes]
    out = {}
    for label in ("without index", "with index", "without index again", "with index again"):
        path = workdir / f"ingest-{len(out)}.db"
        with Store(f"sqlite:///{path}") as store:
            outbox = Outbox(store)
            started = time.perf_counter()
            indexed = label.startswith("with index")
            for start in range(0, count, 500):
                outbox.record_and_claim(envelopes[start:start + 500], [],
                                        described=described[start:start + 500] if indexed else ())
            out[label] = count / (time.perf_counter() - started)
        path.unlink()
    return out


def measure_previews(base: str, store: Store, mix: Mix, owners: dict[str, Any],
                     requests: int) -> dict[str, dict[str, Any]]:
    """Each rule is previewed by its own user (related-events and my_actions depend on it)."""
    out: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}

    def token(user: str) -> str:
        if user not in tokens:
            tokens[user] = Credentials(store).create_token(user, f"bench-{time.time_ns()}",
                                                           "read")[0]
        return tokens[user]

    with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as client:
        for kind in KINDS:
            times, totals = [], []
            for i in range(requests + 5):
                rule = mix.rule(kind, i, owners)
                body = {"rule": {k: rule[k] for k in ("track", "filters")}, "since": "7d",
                        "limit": 50}
                headers = {"Authorization": f"Bearer {token(rule['user'])}"}
                started = time.perf_counter()
                response = client.post("/rule-preview", json=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"rule-preview answered {response.status_code}: "
                                       f"{response.text[:500]}")
                if i >= 5:
                    times.append(elapsed)
                    totals.append(response.json()["total"])
            out[kind] = {"p50": percentile(times, 50), "p95": percentile(times, 95),
                         "max": max(times), "matches": statistics.median(totals),
                         "most": max(totals)}
    return out


def measure_baseline(store: Store, describer: Describer, mix: Mix, owners: dict[str, Any],
                     kinds: tuple[str, ...], now: float) -> dict[str, float]:
    out = {}
    for kind in kinds:
        data = mix.rule(kind, 5, owners)
        rule = parse_rule(data, source="benchmark")
        started = time.perf_counter()
        for _ in scan(store, describer, rule, now - WEEK):
            pass
        out[kind] = (time.perf_counter() - started) * 1000
    return out


# -- many clients -----------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection, as plain as a browser's: the request's
    bytes out, the status line, headers and ``Content-Length`` body back. Cheap on
    purpose, so that 200 of them in one process measure the service, not the client."""

    def __init__(self, host: str, port: int, token: str):
        self.host, self.port = host, port
        self.head = (f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                     "Accept: application/json\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n".encode() + self.head)
        status_line = await self.reader.readline()
        if not status_line:  # closed while idle (keep-alive timeout): once more, anew
            self.writer = None
            return await self.get(path)
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.writer = None
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def clients_main(base: str, tokens: list[str], paths: list[str], seconds: float,
                 think: float, results: Any) -> None:
    host, _, port = base.split("://", 1)[1].split("/", 1)[0].rpartition(":")
    prefix = "/" + base.split("://", 1)[1].split("/", 1)[1] if base.count("/") > 2 else ""

    async def one(token: str, seed: int) -> list[tuple[str, float, int]]:
        rnd = random.Random(seed)
        got = []
        conn = Connection(host, int(port), token)
        try:
            await asyncio.sleep(rnd.uniform(0, think))
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for path in paths:
                    started = time.perf_counter()
                    status = await conn.get(prefix + path)
                    got.append((path, (time.perf_counter() - started) * 1000, status))
                await asyncio.sleep(rnd.uniform(0.5 * think, 1.5 * think))
        finally:
            conn.close()
        return got

    async def every() -> list[tuple[str, float, int]]:
        done = await asyncio.gather(*(one(t, i) for i, t in enumerate(tokens)))
        return [item for part in done for item in part]

    results.put(asyncio.run(every()))


def run_clients(base: str, tokens: list[str], paths: list[str], seconds: float,
                think: float) -> dict[str, dict[str, float]]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=clients_main, args=(f"{base}/api/v1", tokens, paths, seconds,
                                                  think, queue))
    proc.start()
    got = queue.get(timeout=seconds + 300)
    proc.join(30)
    out = {}
    for path in paths:
        times = [ms for p, ms, _ in got if p == path]
        bad = sum(1 for p, _, status in got if p == path and status != 200)
        out[path] = {"n": len(times), "p50": percentile(times, 50),
                     "p99": percentile(times, 99), "errors": bad}
    return out


def load_phase(args: argparse.Namespace, store: Store, base: str, bus: tuple[str, str]
               ) -> dict[str, Any]:
    names = [f"client{i:03d}" for i in range(args.clients)]
    store.import_users([{"name": n, "emails": [f"{n}@example.org"]} for n in names])
    credentials = Credentials(store)
    tokens = [credentials.create_token(n, f"bench-{time.time_ns()}", "read")[0]
              for n in names]
    paths = ["/users/me"]
    schema = httpx.get(f"{base}/api/v1/openapi.json", timeout=30).json()
    if "/api/v1/notifications" in schema.get("paths", {}):
        paths.append("/notifications")
    quiet = run_clients(base, tokens, paths, args.load_seconds, args.think)
    busy, rate = busy_phase(args, base, bus, tokens, paths)
    return {"quiet": quiet, "busy": busy, "paths": paths, "rate": rate, "tokens": tokens}


def busy_phase(args: argparse.Namespace, base: str, bus: tuple[str, str], tokens: list[str],
               paths: list[str]) -> tuple[dict[str, dict[str, float]], float]:
    """The clients while the bus carries ``--rate`` messages/s; and the rate held."""
    publisher = Publisher(config_from_dict(
        {"bus": {"relay_inbound": bus[0], "endpoints": [bus[1]], "publish_timeout": 30.0}}))
    mix = Mix(200, 500, 5, seed=99)
    count = int(args.rate * (args.load_seconds + 4))
    held: list[float] = []
    topics = [f"{app}.{event}" for app in APPS for event in EVENTS]

    def publish() -> None:
        held.append(paced(args.rate, count, lambda i: publisher.publish(
            topics[i % len(topics)], mix.messages(1, time.time(), 10_000_000 + i)[0]["msg"],
            modname="bench")))

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    time.sleep(2)
    busy = run_clients(base, tokens, paths, args.load_seconds, args.think)
    thread.join(args.load_seconds + 60)
    publisher.close()
    return busy, held[0] if held else 0.0


def threaded_phase(args: argparse.Namespace, load: dict[str, Any], workdir: Path,
                   db_url: str, http: str, bus: tuple[str, str]) -> dict[str, dict[str, float]]:
    """Baseline: the busy clients again, with HTTP served from a thread of notifier serve
    (``[http] process = false``, as before HTTP had a process of its own)."""
    conf = write_config(workdir / "notifier-thread.toml", db_url, bus, http, False)
    service = Service(conf, http, workdir / "serve-thread.log")
    try:
        return busy_phase(args, f"http://{http}", bus, load["tokens"], load["paths"])[0]
    finally:
        service.stop()


# -- the run -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000",
                        help="stored messages, comma-separated (default 100000,1000000)")
    parser.add_argument("--requests", type=int, default=40,
                        help="previews measured per track kind and size (default 40)")
    parser.add_argument("--baseline-rules-large", type=int, default=1,
                        help="rules the full scan is timed for past the first size (default 1)")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients (200)")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="bus messages/s during the load phase (default 500)")
    parser.add_argument("--load-seconds", type=float, default=20.0,
                        help="length of the load phase (default 20)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a client pauses between requests (default 1)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL instead of a fresh SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="work here (kept), adding to the history a kept run left")
    parser.add_argument("--skip-load", action="store_true",
                        help="measure the previews only, not the many clients")
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run; targets shown, not enforced")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.requests, args.clients, args.load_seconds = "2000", 5, 20, 3.0
        args.rate = 100.0
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.workdir is not None:
        args.keep = True
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="notifier-api-bench-"))
    db_url = args.database_url or f"sqlite:///{workdir / 'notifier.db'}"
    bus = (f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}")
    http = f"127.0.0.1:{free_port()}"
    conf = write_config(workdir / "notifier.toml", db_url, bus, http)
    config = load_config(str(conf))
    print(f"API benchmark: {os.cpu_count()} cores, load average {loadavg()}; "
          f"database {'PostgreSQL' if args.database_url else 'SQLite'}")
    verdicts: list[tuple[str, float, str, bool]] = []
    try:
        verdicts = run(args, sizes, config, conf, workdir, http, bus)
    finally:
        if args.keep:
            print(f"kept the work directory (database, config, serve.log): {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nresults ({'--quick: targets not enforced' if args.quick else 'full run'}):")
    print(f"  {'target':<52} {'measured':>12}  {'goal':<10} verdict")
    for name, value, goal, ok in verdicts:
        print(f"  {name:<52} {value:>9.1f} ms  {goal:<10} {verdict(ok)}")
    failed = any(not ok for *_, ok in verdicts)
    return 0 if args.quick or not failed else 1


def run(args: argparse.Namespace, sizes: list[int], config: Any, conf: Path, workdir: Path,
        http: str, bus: tuple[str, str]) -> list[tuple[str, float, str, bool]]:
    verdicts = []
    mix = Mix(5000, 20000, 60)
    owners = mix.owners()
    describer = Describer(config)
    now = time.time()
    store = Store.from_config(config)
    store.apply_ownership(owners)
    have = store.count_messages()
    if have:
        print(f"\nadding to the {have:,} messages of {workdir}")
    ingest = ingest_cost(config, workdir, Mix(5000, 20000, 60, seed=5),
                         2000 if args.quick else 50_000)
    without = (ingest["without index"] + ingest["without index again"]) / 2
    with_index = (ingest["with index"] + ingest["with index again"]) / 2
    print(f"\ningest's history write (Outbox.record_and_claim, batches of 500, SQLite), "
          f"two rounds each, alternated: without the index {without:,.0f} msg/s, with it "
          f"{with_index:,.0f} msg/s: {without / with_index:.2f}x the time per message")
    try:
        for n, size in enumerate(sizes):
            if size > have:
                took = fill(store, describer, mix, have, size, now)
                print(f"\n{size:,} stored messages over 7 days: {size - have:,} stored with "
                      f"their index in {took:.1f} s ({(size - have) / took:,.0f} msg/s)")
                have = size
            size = have
            service = Service(conf, http, workdir / "serve.log")
            try:
                previews = measure_previews(f"http://{http}", store, mix, owners, args.requests)
                load = load_phase(args, store, f"http://{http}", bus) \
                    if n == 0 and not args.skip_load else None
            finally:
                service.stop()
            if load is not None:
                load["threaded"] = threaded_phase(args, load, workdir, str(config.database_url),
                                                  http, bus)
            kinds = KINDS if n == 0 else KINDS[2:2 + args.baseline_rules_large]
            baseline = measure_baseline(store, describer, mix, owners, kinds, now)
            print(f"  rule preview, {args.requests} rules per kind, one request at a time "
                  f"(ms); baseline: the full scan, in-process")
            print(f"  {'track kind':<22} {'p50':>7} {'p95':>7} {'max':>7} {'matches':>8} "
                  f"{'most':>6} {'full scan':>10} {'ratio':>7}")
            target = p95_target(size)
            for kind, r in previews.items():
                base = baseline.get(kind)
                shown = f"{base:>10.0f} {base / r['p50']:>6.0f}x" if base else \
                    f"{'-':>10} {'-':>7}"
                print(f"  {kind:<22} {r['p50']:>7.1f} {r['p95']:>7.1f} {r['max']:>7.1f} "
                      f"{r['matches']:>8,.0f} {r['most']:>6,} {shown}")
                verdicts.append((f"preview p95, {kind}, {size:,} msgs", r["p95"],
                                 f"<= {target:.0f} ms", r["p95"] <= target))
            if load is not None:
                print(f"\n  {args.clients} clients, each pausing ~{args.think:g} s between "
                      f"requests, {args.load_seconds:g} s; bus at {load['rate']:,.0f} msg/s "
                      "(baseline: no bus traffic)")
                if "/notifications" not in load["paths"]:
                    print("  (the inbox, GET /api/v1/notifications, is not in this service: "
                          "only /users/me is measured)")
                for path in load["paths"]:
                    q, b, t = load["quiet"][path], load["busy"][path], load["threaded"][path]
                    print(f"  GET {path:<16} {b['n']:>6,} requests: p50 {b['p50']:6.1f} ms "
                          f"p99 {b['p99']:6.1f} ms, {b['errors']} errors; quiet: p50 "
                          f"{q['p50']:6.1f} ms p99 {q['p99']:6.1f} ms "
                          f"(p99 ratio {b['p99'] / q['p99']:.1f}x)")
                    print(f"  {'':<20} HTTP in a thread of serve ([http] process = false): "
                          f"p50 {t['p50']:6.1f} ms p99 {t['p99']:6.1f} ms "
                          f"(p99 {t['p99'] / b['p99']:.1f}x the process's)")
                    verdicts.append((f"GET {path} p99, {args.clients} clients, "
                                     f"{args.rate:g} msg/s", b["p99"], f"<= {P99_LOAD_MS:.0f} ms",
                                     b["p99"] <= P99_LOAD_MS and b["errors"] == 0))
    finally:
        store.close()
    return verdicts


if __name__ == "__main__":
    sys.exit(main())
