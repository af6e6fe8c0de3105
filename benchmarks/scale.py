#!/usr/bin/env python3
"""Scaling out: `notifier serve` workers on RabbitMQ + PostgreSQL, and what each part costs.

One run measures, on this machine:

1. **Baseline: embedded ZeroMQ + SQLite.** One `notifier serve` with its
   embedded relay and a SQLite file. ZeroMQ holds no queue, so the benchmark
   publishes ``--messages`` as fast as the service takes them, keeping at most
   5,000 in flight (published minus received, read from /metrics), so
   nothing is dropped and the service never waits for work.
2. **RabbitMQ + PostgreSQL, 1 then 2 workers** (``--workers``). Each run gets
   a fresh PostgreSQL schema and a durable queue of its own. The workers
   (separate `notifier serve` processes, ``embedded_relay = false``) start on
   the empty queue and are held (SIGSTOP) once ready; the queue is filled with
   ``--messages``; then all are released at once (SIGCONT), so the publisher
   is never the bottleneck and every worker starts together.

Every message names one to three packages that users follow; each such user
has a rule sending them to their feed (``rss``), and every user has one to four
rules more that these messages do not match (the population of
``benchmarks/e2e.py``). Figures, per run, from the release (or the first
publish) until every message is recorded, then every notification delivered:

* messages/s **into the outbox** (history and outbox rows committed) and
  **through delivery** (every notification delivered: its feed item stored,
  counted in ``notifier_notifications_sent_total``). A feed's notification is
  delivered in the transaction that records it, so the two are one moment
  here; with mail they would not be;
* **CPU-ms per message** of each part, from ``/proc/<pid>/stat``: the
  workers' main processes (ingest, matching, rendering, recording with the
  feed items), their sender processes (mail and digests: idle here), their
  web processes, RabbitMQ (``beam.smp``), the PostgreSQL backends of this
  run (found by ``application_name``), and PostgreSQL's own background
  processes (WAL writer, checkpointer, ...).

Then a **model**: a worker on a machine of its own takes ``1000 / ms`` messages
per second, where ``ms`` is the CPU-ms per message of its main process plus
that of the PostgreSQL backends (the ingest waits for each batch's
transaction, so the two take turns; the main process holds one interpreter
lock, so it is worth one core at most), or of its sender process if that is
more; RabbitMQ takes ``1000 / ms`` too (a classic queue is
one Erlang process: one core, however many the broker has); PostgreSQL
takes ``--db-cores * 1000 / ms``. W workers then carry the least of ``W x
worker``, the broker, and PostgreSQL; the part that gives the least is what
saturates first. The model is checked on this machine, where every part
shares its cores: there it predicts the least of ``W x worker`` and
``cores * 1000 / (sum of every part's ms)``, against the measured 1 and 2
worker figures.

The broker and PostgreSQL may serve others on a shared machine: their
processes' CPU then includes that work (the load average is printed).

    .venv/bin/python benchmarks/scale.py [--messages 40000] [--users 2000] [--workers 1,2]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--amqp-url amqp://guest:guest@127.0.0.1:5672/%2F] [--db-cores 8] [--profile DIR]
        [--quick]

Targets (same run): 2 workers >= 1.6x 1 worker; >= 5,000 messages/s into the
outbox with 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.e2e import (  # noqa: E402
    Population,
    Profile,
    Service,
    cpu_seconds,
    database,
    free_port,
    loadavg,
    notifier_cmd,
)
from notifier.bus.publisher import Publisher  # noqa: E402
from notifier.config import config_from_dict  # noqa: E402

RATIO_TARGET = 1.6
OUTBOX_TARGET = 5000.0
IN_FLIGHT = 5000
MATCHED = "notifier_messages_matched_total"
RECEIVED = "notifier_messages_received_total"
SENT = 'notifier_notifications_sent_total{destination="rss"}'
PARTS = ("worker main", "worker sender", "worker web", "rabbitmq", "postgresql backends",
         "postgresql background")


# -- the processes of each part -----------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def broker_pids() -> list[int]:
    return [pid for pid in all_pids() if _comm(pid) == "beam.smp"]


def pg_background_pids() -> list[int]:
    names = ("walwriter", "checkpointer", "background writer", "autovacuum", "logical",
             "stats", "archiver", "walsender")
    return [pid for pid in all_pids() if _cmdline(pid).startswith("postgres: ")
            and any(name in _cmdline(pid) for name in names)]


def pg_backend_pids(plain_url: str, app: str) -> list[int]:
    import psycopg

    with psycopg.connect(plain_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,))]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return out


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _holds(pid: int, inodes: set[str]) -> bool:
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return any(link[8:-1] in inodes for link in links if link.startswith("socket:["))


def worker_parts(pid: int, http_port: int) -> dict[str, list[int]]:
    """The main process of a worker, its sender process and its web process.

    Both children are spawned alike; the web process is the one listening on ``http_port``.
    """
    parts: dict[str, list[int]] = {"worker main": [pid], "worker sender": [], "worker web": []}
    inodes = _listening_inodes(http_port)
    for child in _children(pid):
        if "resource_tracker" in _cmdline(child):
            parts["worker main"].append(child)  # multiprocessing's helper: the main's own
        elif _holds(child, inodes):
            parts["worker web"].append(child)
        else:
            parts["worker sender"].append(child)
    return parts


def machine_busy() -> float:
    """CPU seconds every core of this machine has been busy, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of each part's processes, between :meth:`start` and :meth:`stop`.

    ``others`` is what the rest of the machine used meanwhile (this benchmark,
    anything else running here), in cores.
    """

    def __init__(self, parts: dict[str, list[int]]):
        self.parts = parts
        self.before: dict[int, float] = {}
        self.used: dict[str, float] = {}
        self.others = 0.0
        self._machine = self._started = 0.0

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            return cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            return None  # ended meanwhile

    def start(self) -> None:
        self.before = {pid: c for pids in self.parts.values() for pid in pids
                       if (c := self._cpu(pid)) is not None}
        self._machine, self._started = machine_busy(), time.monotonic()

    def stop(self) -> dict[str, float]:
        for part, pids in self.parts.items():
            total = 0.0
            for pid in pids:
                now = self._cpu(pid)
                if now is not None and pid in self.before:
                    total += now - self.before[pid]
            self.used[part] = total
        elapsed = time.monotonic() - self._started
        busy = machine_busy() - self._machine
        self.others = max(0.0, busy - sum(self.used.values())) / elapsed if elapsed else 0.0
        return self.used


# -- the runs -------------------------------------------------------------------------


def write_config(path: Path, db_url: str, bus: dict[str, Any], http: str, maildir: Path,
                 modname: str) -> None:
    lines = [f"database_url = {json.dumps(db_url)}", "[bus]"]
    for key in ("relay_inbound", "endpoints", "embedded_relay", "publish_timeout"):
        if key in bus:
            lines.append(f"{key} = {json.dumps(bus[key])}")
    if "amqp" in bus:
        amqp = bus["amqp"]
        lines += ["[bus.amqp]", *(f"{k} = {json.dumps(v)}" for k, v in amqp.items()
                                  if k != "bindings")]
        for binding in amqp.get("bindings", ()):
            lines += ["[[bus.amqp.bindings]]", f"exchange = {json.dumps(binding['exchange'])}",
                      f"routing_keys = {json.dumps(binding['routing_keys'])}"]
    lines += ["[email]", f"maildir = {json.dumps(str(maildir))}",
              "[http]", f'listen = "{http}"',
              "[[meta.mappings]]", f'topic = "org.fedoraproject.dev.{modname}.*"',
              'app = "bench"', 'summary = "seq={seq}"', 'packages_paths = ["packages"]',
              'agent_path = "agent"']
    path.write_text("\n".join(lines) + "\n")


def messages_for(population: Population, n: int) -> tuple[list[dict[str, Any]], int]:
    """``n`` message bodies and how many notifications they make."""
    bodies, owed = [], 0
    for seq in range(n):
        users = population.recipients()
        owed += len(users)
        bodies.append({"seq": seq, "packages": [f"feed-{u:05d}" for u in users],
                       "agent": "bench-bot"})
    return bodies, owed


def import_population(conf: Path, workdir: Path, population: Population) -> None:
    files = {"users": population.users(), "owners": population.owners(),
             "rules": population.rules()}
    for name, data in files.items():
        (workdir / f"{name}.json").write_text(json.dumps(data))
    for name in files:
        notifier_cmd(conf, name, "import", str(workdir / f"{name}.json"))


def watch(services: list[Service], messages: int, owed: int, started: float,
          timeout: float, feed: Any = None) -> dict[str, float]:
    """Until every message is recorded and every notification delivered: when each happened."""
    recorded_at = delivered_at = None
    deadline = time.monotonic() + timeout
    last_progress, last_seen = time.monotonic(), (-1.0, -1.0)
    while True:
        if feed is not None:
            feed()
        totals = [s.metrics() for s in services]
        matched = sum(m.get(MATCHED, 0.0) for m in totals)
        sent = sum(m.get(SENT, 0.0) for m in totals)
        now = time.monotonic()
        if recorded_at is None and matched >= messages:
            recorded_at = now
        if delivered_at is None and sent >= owed:
            delivered_at = now
        if recorded_at is not None and delivered_at is not None:
            break
        if (matched, sent) != last_seen:
            last_progress, last_seen = now, (matched, sent)
        for s in services:
            if s.proc.poll() is not None:
                raise RuntimeError(f"notifier serve exited {s.proc.returncode}:\n{s.tail()}")
        if now > deadline or now - last_progress > 60:
            raise RuntimeError(f"stalled: {matched:.0f} of {messages} messages recorded, "
                               f"{sent:.0f} of {owed} notifications delivered")
        # Each look reads every worker's /metrics, whose gauges query the database: a few
        # times a second keeps that small beside the work measured; finishing is seen up to
        # one sleep late (a rate a little low, never high).
        time.sleep(0.2 if feed is not None else 0.5)  # feeding: 5,000 in flight last 2 s
    return {"recorded": recorded_at - started, "delivered": delivered_at - started}


def figures(name: str, messages: int, owed: int, times: dict[str, float],
            cpu: dict[str, float], others: float) -> dict[str, Any]:
    return {"name": name, "messages": messages, "notifications": owed, "other_cores": others,
            "outbox_rate": messages / times["recorded"],
            "delivery_rate": messages / times["delivered"],
            "seconds": times, "cpu_ms": {part: cpu.get(part, 0.0) * 1000 / messages
                                         for part in PARTS if part in cpu}}


def run_embedded(args: argparse.Namespace, workdir: Path, population: Population,
                 bodies: list[dict[str, Any]], owed: int) -> dict[str, Any]:
    """One `notifier serve` with its embedded ZeroMQ relay, on SQLite."""
    modname = f"scale{os.getpid()}z"
    bus = {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
           "endpoints": [f"tcp://127.0.0.1:{free_port()}"], "publish_timeout": 30.0}
    http = f"127.0.0.1:{free_port()}"
    conf = workdir / "zmq.toml"
    write_config(conf, f"sqlite:///{workdir / 'zmq.db'}", bus, http, workdir / "Maildir",
                 modname)
    import_population(conf, workdir, population)
    service = Service(conf, http, workdir / "serve-zmq.log")
    try:
        publisher = Publisher(config_from_dict({"bus": {
            "relay_inbound": bus["relay_inbound"], "endpoints": bus["endpoints"],
            "publish_timeout": 30.0}}))
        # Until the service has subscribed, what is published goes nowhere: wait for one.
        deadline = time.monotonic() + 60
        while service.metrics().get(RECEIVED, 0.0) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve received nothing:\n{service.tail()}")
            publisher.publish("warmup", {"agent": "bench-bot"}, modname)
            time.sleep(0.1)
        base = service.metrics().get(RECEIVED, 0.0)
        parts = worker_parts(service.proc.pid, int(http.rsplit(":", 1)[1]))
        parts["publisher (this benchmark)"] = [os.getpid()]
        meter = CpuMeter(parts)
        sent = [0]

        def feed() -> None:
            # Keep the service busy without outrunning ZeroMQ's queues (which would drop).
            room = IN_FLIGHT - (sent[0] - (service.metrics().get(RECEIVED, 0.0) - base))
            for body in bodies[sent[0]:sent[0] + max(0, int(room))]:
                publisher.publish("feed", body, modname)
                sent[0] += 1

        meter.start()
        started = time.monotonic()
        with Profile(args.profile, service.proc.pid).phase("embedded"):
            times = watch([service], len(bodies), owed, started, 600, feed)
        cpu = meter.stop()
        publisher.close()
    finally:
        service.stop()
    result = figures("embedded ZeroMQ + SQLite, 1 process", len(bodies), owed, times, cpu,
                     meter.others)
    result["cpu_ms"]["publisher (this benchmark)"] = cpu["publisher (this benchmark)"] * 1000 \
        / len(bodies)
    return result


def run_amqp(args: argparse.Namespace, workdir: Path, population: Population,
             bodies: list[dict[str, Any]], owed: int, workers: int) -> dict[str, Any]:
    """``workers`` `notifier serve` processes sharing a RabbitMQ queue and PostgreSQL."""
    tag = f"scale{os.getpid()}w{workers}{random.randrange(1 << 20):x}"
    app = f"notifier-bench-{tag}"
    url = args.database_url + ("&" if "?" in args.database_url else "?") + \
        f"application_name={app}"
    plain = re.sub(r"^postgresql\+\w+://", "postgresql://", args.database_url)
    amqp = {"queue": tag, "dead_letter_queue": f"{tag}.dead",
            "dead_letter_exchange": f"{tag}.dead", "prefetch_count": args.prefetch,
            "bindings": [{"exchange": "amq.topic",
                          "routing_keys": [f"org.fedoraproject.dev.{tag}.#"]}]}
    bus = {"relay_inbound": args.amqp_url, "endpoints": [args.amqp_url],
           "embedded_relay": False, "publish_timeout": 30.0, "amqp": amqp}
    services: list[Service] = []
    with database(url, workdir) as (db_url, shown), ExitStack() as stack:
        stack.callback(delete_queue, args.amqp_url, amqp)
        confs = []
        for w in range(workers):
            http = f"127.0.0.1:{free_port()}"
            conf = workdir / f"{tag}-{w}.toml"
            write_config(conf, db_url, bus, http, workdir / "Maildir", tag)
            confs.append((conf, http))
        import_population(confs[0][0], workdir, population)
        try:
            for w, (conf, http) in enumerate(confs):
                services.append(Service(conf, http, workdir / f"serve-{tag}-{w}.log"))
            for s in services:
                s.proc.send_signal(signal.SIGSTOP)  # held while the queue fills
            config = config_from_dict({"bus": bus})
            with Publisher(config) as publisher:
                for body in bodies:
                    publisher.publish("feed", body, tag)
            parts: dict[str, list[int]] = {part: [] for part in PARTS}
            for s, (_conf, http) in zip(services, confs, strict=True):
                for part, pids in worker_parts(s.proc.pid, int(http.rsplit(":", 1)[1])).items():
                    parts[part] += pids
            parts["rabbitmq"] = broker_pids()
            parts["postgresql backends"] = pg_backend_pids(plain, app)
            parts["postgresql background"] = pg_background_pids()
            meter = CpuMeter(parts)
            meter.start()
            started = time.monotonic()
            for s in services:
                s.proc.send_signal(signal.SIGCONT)
            with Profile(args.profile if workers == 1 else None,
                         services[0].proc.pid).phase(f"amqp-{workers}"):
                times = watch(services, len(bodies), owed, started, 600)
            # Backends opened after the start (a pool growing) count from their first use.
            late = set(pg_backend_pids(plain, app)) - set(parts["postgresql backends"])
            cpu = meter.stop()
            cpu["postgresql backends"] += sum(CpuMeter._cpu(pid) or 0.0 for pid in late)
        finally:
            for s in services:
                s.proc.send_signal(signal.SIGCONT)
                s.stop()
    noun = "worker" if workers == 1 else "workers"
    result = figures(f"RabbitMQ + PostgreSQL, {workers} {noun}", len(bodies), owed, times, cpu,
                     meter.others)
    result.update(queue=tag, schema=shown.rpartition("schema ")[2])
    return result


def delete_queue(amqp_url: str, amqp: dict[str, Any]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_delete(amqp["queue"])
        channel.queue_delete(amqp["dead_letter_queue"])
        channel.exchange_delete(amqp["dead_letter_exchange"])
    finally:
        connection.close()


# -- the model ------------------------------------------------------------------------


def model(run: dict[str, Any], db_cores: int, cores: int) -> dict[str, Any]:
    """Capacities (messages/s) of each part, from one run's CPU-ms per message."""
    ms = run["cpu_ms"]
    # Each message goes through one worker: its CPU-ms per message are the workers' summed.
    # A worker's ingest waits for its own transaction: the database's work on a batch is
    # on the worker's path as much as its own. Its sender runs beside it.
    serial = ms.get("worker main", 0.0) + ms.get("postgresql backends", 0.0)
    busiest = max(serial, ms.get("worker sender", 0.0))
    worker = 1000 / busiest if busiest else float("inf")
    broker = 1000 / ms["rabbitmq"] if ms.get("rabbitmq") else float("inf")
    pg_ms = ms.get("postgresql backends", 0.0) + ms.get("postgresql background", 0.0)
    postgres = db_cores * 1000 / pg_ms if pg_ms else float("inf")
    total = sum(v for k, v in ms.items() if k in PARTS)
    # Here, every part shares the cores left by whatever else ran meanwhile.
    left = max(0.1, cores - run.get("other_cores", 0.0))
    return {"worker": worker, "broker": broker, "postgresql": postgres,
            "here": left * 1000 / total if total else float("inf"), "total_ms": total,
            "cores_left": left}


def predict(caps: dict[str, float], workers: int, here: bool = False) -> tuple[float, str]:
    """Messages/s for ``workers`` workers, and the part that limits it."""
    workers_part = "the workers (ingest and delivery)"
    limits = {workers_part: workers * caps["worker"], "the broker": caps["broker"],
              "PostgreSQL writes": caps["postgresql"]}
    if here:
        limits = {workers_part: workers * caps["worker"], "this machine's cores": caps["here"]}
    part = min(limits, key=lambda k: limits[k])
    return limits[part], part


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_run(run: dict[str, Any]) -> None:
    print(f"\n{run['name']}: {run['messages']:,} messages, {run['notifications']:,} feed "
          f"notifications")
    print(f"  into the outbox:  {run['outbox_rate']:>8,.0f} messages/s  "
          f"(all recorded in {run['seconds']['recorded']:.1f} s)")
    print(f"  through delivery: {run['delivery_rate']:>8,.0f} messages/s  "
          f"(all delivered in {run['seconds']['delivered']:.1f} s)")
    print("  CPU-ms per message: " + ", ".join(f"{k} {v:.3f}" for k, v in run["cpu_ms"].items())
          + f"; total {sum(run['cpu_ms'].values()):.3f}")
    print(f"  meanwhile the rest of the machine (other programs) used {run['other_cores']:.2f} "
          "cores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=40000, help="per run (default 40000)")
    parser.add_argument("--users", type=int, default=2000, help="users (default 2000)")
    parser.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL; each run uses a schema of its own there")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F",
                        help="RabbitMQ; each run uses a queue of its own there")
    parser.add_argument("--prefetch", type=int, default=1000,
                        help="[bus.amqp] prefetch_count of the workers (default 1000)")
    parser.add_argument("--db-cores", type=int, default=8,
                        help="cores of the PostgreSQL machine in the model (default 8)")
    parser.add_argument("--no-embedded", action="store_true",
                        help="leave out the embedded ZeroMQ + SQLite baseline")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record the embedded service and the first worker with py-spy")
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run (200 users, 600 messages); targets shown, "
                             "not enforced")
    args = parser.parse_args()
    if args.quick:
        args.users, args.messages = 200, 600
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if not counts or min(counts) < 1 or args.messages < 1:
        parser.error("--workers must list positive counts, --messages be positive")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    load_start = loadavg()
    print(f"scale-out benchmark: {args.users:,} users, {args.messages:,} messages per run, "
          f"rss destinations only; {cores} CPUs, load average at start {load_start}")
    population = Population(args.users, 3)
    bodies, owed = messages_for(population, args.messages)
    workdir = Path(tempfile.mkdtemp(prefix="notifier-scale-"))
    runs: list[dict[str, Any]] = []
    try:
        if not args.no_embedded:
            runs.append(run_embedded(args, workdir, Population(args.users, 3), bodies, owed))
            runs[-1]["workers"] = 1
            print_run(runs[-1])
        for workers in counts:
            run = run_amqp(args, workdir, Population(args.users, 3), bodies, owed, workers)
            run["workers"] = workers
            runs.append(run)
            print_run(run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    amqp = {r["workers"]: r for r in runs if r["name"].startswith("RabbitMQ")}
    one, two = amqp.get(1), amqp.get(2)
    embedded = next((r for r in runs if r["name"].startswith("embedded")), None)
    print("\nratios")
    if embedded is not None:
        for w, r in sorted(amqp.items()):
            print(f"  {w} worker(s) / embedded, into the outbox: "
                  f"{r['outbox_rate'] / embedded['outbox_rate']:.2f}x; through delivery: "
                  f"{r['delivery_rate'] / embedded['delivery_rate']:.2f}x")
    ratio = two["outbox_rate"] / one["outbox_rate"] if one and two else float("nan")
    if one and two:
        print(f"  2 workers / 1 worker, into the outbox: {ratio:.2f}x; through delivery: "
              f"{two['delivery_rate'] / one['delivery_rate']:.2f}x")

    # The model, from the run with the most workers (the busiest broker and database).
    basis = amqp[max(amqp)]
    caps = model(basis, args.db_cores, cores)
    print(f"\nmodel (from the {basis['workers']}-worker run's CPU-ms per message)")
    print(f"  one worker on a machine of its own: {caps['worker']:>9,.0f} messages/s "
          "(its ingest and the database's work on its batches, in turn)")
    print(f"  RabbitMQ, one queue:                {caps['broker']:>9,.0f} messages/s "
          "(one core: a classic queue is one Erlang process)")
    print(f"  PostgreSQL writes:                  {caps['postgresql']:>9,.0f} messages/s "
          f"({args.db_cores} cores)")
    checks = {}
    for w, r in sorted(amqp.items()):
        predicted, part = predict(model(r, args.db_cores, cores), w, here=True)
        checks[w] = {"predicted": predicted, "measured": r["outbox_rate"], "limit": part}
        left = model(r, args.db_cores, cores)["cores_left"]
        print(f"  check on this machine ({left:.2f} of {cores} cores left to the parts), "
              f"{w} worker(s): "
              f"predicted {predicted:,.0f}, measured {r['outbox_rate']:,.0f} messages/s "
              f"({r['outbox_rate'] / predicted:.0%}); limit: {part}")
    idle = {}
    for w in sorted(amqp):
        # The same figures, with every core of this machine left to the parts.
        caps_idle = {**model(amqp[w], args.db_cores, cores), "here": cores * 1000 / model(
            amqp[w], args.db_cores, cores)["total_ms"]}
        idle[w] = predict(caps_idle, w, here=True)[0]
    if 1 in idle and 2 in idle:
        print(f"  on this machine with nothing else running, the model gives: 1 worker "
              f"{idle[1]:,.0f}, 2 workers {idle[2]:,.0f} messages/s ({idle[2] / idle[1]:.2f}x)")
    if 2 in amqp:
        # What the outbox target asks of every part together, on this machine's cores.
        need = cores * 1000 / OUTBOX_TARGET
        used = model(amqp[2], args.db_cores, cores)["total_ms"]
        print(f"  {OUTBOX_TARGET:,.0f} messages/s here needs at most {need:.2f} CPU-ms per "
              f"message over every part ({cores} cores); the 2-worker run used {used:.2f} "
              f"({used / need:.1f}x)")
    out = {}
    for w in (8, 32):
        rate, part = predict(caps, w)
        out[w] = {"rate": rate, "saturates": part}
        print(f"  {w:>2} workers on separate machines: {rate:>9,.0f} messages/s; "
              f"saturates first: {part}")

    load_end = loadavg()
    print(f"\nresults ({'--quick: targets not enforced' if args.quick else 'full run'}); "
          f"load average at start {load_start}, at end {load_end}")
    best = two["outbox_rate"] if two else float("nan")
    targets = {"ratio": (ratio, f">= {RATIO_TARGET}x", ratio >= RATIO_TARGET),
               "outbox": (best, f">= {OUTBOX_TARGET:,.0f} msg/s", best >= OUTBOX_TARGET)}
    print(f"  {'2 workers / 1 worker (into the outbox)':<44} {ratio:>10.2f}x  "
          f"{targets['ratio'][1]:<16} {verdict(targets['ratio'][2])}")
    print(f"  {'into the outbox, 2 workers':<44} {best:>6,.0f} msg/s  "
          f"{targets['outbox'][1]:<16} {verdict(targets['outbox'][2])}")
    print(json.dumps({"runs": runs, "model": {"capacities": caps, "at": out, "checks": checks,
                                              "idle_machine": idle},
                      "ratio_2_vs_1": ratio, "quick": args.quick, "cpus": cores,
                      "load_start": load_start, "load_end": load_end,
                      "targets": {k: {"value": v[0], "goal": v[1], "pass": v[2]}
                                  for k, v in targets.items()}}))
    if not args.quick and not all(t[2] for t in targets.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
