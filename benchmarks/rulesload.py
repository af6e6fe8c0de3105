#!/usr/bin/env python3
"""Rules load benchmark: how fast and small a worker starts matching, as whole processes.

Builds (once, then reused) a SQLite database with the community of
``benchmarks/match.py``: ``--users`` users (default 100,000) with about 5
rules each (about 500,000 rules), and the package ownership with its
heavy-tailed skew (a few people own hundreds of packages). Then it starts,
as separate processes, each measured from ``exec`` to the first answer:

* ``notifier match --described`` given one described record on stdin, until
  it prints the recipients (peak RSS from the child's own ``rusage``);
* ``notifier serve`` until ``/healthz`` answers 200 (peak RSS of the main
  process, where the matcher lives, from ``/proc/<pid>/status`` ``VmHWM``;
  its HTTP child is listed apart).

Each is run with the rules snapshot (the default) and with
``NOTIFIER_RULES_SNAPSHOT=off``, the full load from the ``rules`` table as
before the snapshot existed, side by side in the same run; the snapshot is
written by the first full load, so that one is run first. Both must print the
same recipients. Targets: start-up <= 5 s, peak RSS <= 300 MB.

Run: ``python benchmarks/rulesload.py`` (the first run builds the database,
a few minutes; later runs reuse it) or ``--quick`` (2,000 users).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.match import World

BIN = Path(sys.executable).parent
TARGET_S = 5.0
TARGET_MB = 300.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_database(path: Path, seed: int, users: int) -> dict[str, int]:
    """Write the world's rules and owners into a fresh database at ``path``."""
    from sqlalchemy import insert

    from notifier.storage import Store
    from notifier.storage.schema import owners
    from notifier.storage.schema import rules as rules_table

    world = World(seed, users)
    now = time.time()
    count = 0
    with Store(f"sqlite:///{path}") as store:
        # Rows written in bulk, as 'notifier rules import' would store them
        # (each document as validated); the change log is left empty, as on a
        # site where it has been pruned.
        batch: list[dict[str, Any]] = []
        with store.engine.begin() as conn:
            for user in world.users:
                for rule in world.rules_of(user):
                    batch.append({"username": user, "name": rule["name"],
                                  "disabled": bool(rule.get("disabled", False)),
                                  "document": rule, "created_at": now, "updated_at": now})
                    if len(batch) >= 5000:
                        conn.execute(insert(rules_table), batch)
                        count += len(batch)
                        batch = []
            if batch:
                conn.execute(insert(rules_table), batch)
                count += len(batch)
            seen = set()
            rows = []
            for package, kind, name in world.ownership:
                if (package, kind, name) not in seen:
                    seen.add((package, kind, name))
                    rows.append({"package": package, "kind": kind, "name": name})
            for start in range(0, len(rows), 5000):
                conn.execute(insert(owners), rows[start:start + 5000])
    return {"rules": count, "owners": len(rows), "packages": len(world.packages)}


def sample_record(seed: int, users: int) -> dict[str, Any]:
    """A described message about a package, from the same world as the database."""
    messages = World(seed, users).messages(50)
    return next((m for m in messages if m["packages"]), messages[0])


def write_config(directory: Path, db: Path) -> Path:
    http = f"127.0.0.1:{free_port()}"
    config = directory / "serve.toml"
    config.write_text(
        f'database_url = "sqlite:///{db}"\n\n[bus]\n'
        f'relay_inbound = "tcp://127.0.0.1:{free_port()}"\n'
        f'endpoints = ["tcp://127.0.0.1:{free_port()}"]\n\n'
        f'[http]\nlisten = "{http}"\n\n[email]\nmaildir = "{directory / "Maildir"}"\n')
    return config


def environment(snapshot: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["NOTIFIER_RULES_SNAPSHOT"] = "on" if snapshot else "off"
    return env


def run_match(config: Path, record: dict[str, Any], snapshot: bool) -> dict[str, Any]:
    """``notifier match --described``: seconds to the first result, peak RSS, the result."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "notifier"), "match", "--described", "--config",
                             str(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment(snapshot))
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write((json.dumps(record) + "\n").encode())
    proc.stdin.close()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    rest = proc.stdout.read()
    errors = proc.stderr.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line:
        raise SystemExit(f"notifier match failed ({proc.returncode}):\n{errors}{rest!r}")
    return {"seconds": elapsed, "rss_mb": usage.ru_maxrss / 1024,
            "result": json.loads(line), "log": errors}


def _status_kb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def run_serve(config: Path, listen: str, snapshot: bool, log_path: Path,
              timeout: float = 300) -> dict[str, Any]:
    """``notifier serve``: seconds to /healthz 200, peak RSS of the main process and children."""
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN / "notifier"), "serve", "--config", str(config)],
                                stdout=log, stderr=log, env=environment(snapshot))
    ready = None
    children_mb: dict[int, float] = {}
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"notifier serve exited {proc.returncode}:\n"
                                 + log_path.read_text())
            for child in _children(proc.pid):
                children_mb[child] = max(children_mb.get(child, 0.0),
                                         _status_kb(child, "VmHWM") / 1024)
            try:
                with urllib.request.urlopen(f"http://{listen}/healthz", timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - t0
                        break
            except OSError:
                pass
            time.sleep(0.02)
        if ready is None:
            raise SystemExit(f"notifier serve was not ready in {timeout} s:\n"
                             + log_path.read_text())
        main_mb = _status_kb(proc.pid, "VmHWM") / 1024
        for child in _children(proc.pid):
            children_mb[child] = max(children_mb.get(child, 0.0),
                                     _status_kb(child, "VmHWM") / 1024)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"seconds": ready, "rss_mb": main_mb,
            "children_mb": sorted(children_mb.values(), reverse=True)}


def row(label: str, value: str, target: str = "", ok: bool | None = None) -> str:
    status = "" if ok is None else ("PASS" if ok else "FAIL")
    return f"  {label:<44} {value:>12}  {target:<10} {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000,
                        help="users to generate, about 5 rules each (default 100000)")
    parser.add_argument("--seed", type=int, default=2024, help="random seed (default 2024)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the database is kept between runs "
                             "(default /tmp/notifier-rulesload-<seed>-<users>)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each process and mode; the best one is shown (default 2)")
    parser.add_argument("--quick", action="store_true", help="2000 users, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.rounds = 2000, 1
    directory = args.dir or Path(f"/tmp/notifier-rulesload-{args.seed}-{args.users}")
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "notifier.db"
    marker = directory / "built.json"
    if not marker.exists():
        for stale in directory.glob("notifier.db*"):
            stale.unlink()
        t0 = time.perf_counter()
        sizes = build_database(db, args.seed, args.users)
        sizes["seconds"] = round(time.perf_counter() - t0, 1)
        marker.write_text(json.dumps(sizes))
    sizes = json.loads(marker.read_text())
    config = write_config(directory, db)
    listen = config.read_text().split('listen = "')[1].split('"')[0]
    record = sample_record(args.seed, args.users)

    print(f"rules load benchmark: seed {args.seed}, {args.users:,} users, "
          f"{sizes['rules']:,} rules, {sizes['owners']:,} owner records, database {db} "
          f"({db.stat().st_size / 2**20:.0f} MB)")
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    # The first start finds no snapshot: it loads every rule, then writes one.
    from notifier.storage import Store, rulesnapshot

    with Store(f"sqlite:///{db}") as store:
        rulesnapshot.drop(store)
    first = run_match(config, record, True)
    for _round in range(args.rounds):
        for snapshot in (False, True):
            results.setdefault(("match", snapshot), []).append(
                run_match(config, record, snapshot))
            results.setdefault(("serve", snapshot), []).append(
                run_serve(config, listen, snapshot, directory / "serve.log"))
    load = os.getloadavg()
    best = {key: min(runs, key=lambda r: r["seconds"]) for key, runs in results.items()}
    agree = best[("match", True)]["result"] == best[("match", False)]["result"]
    recipients = len(best[("match", True)]["result"]["recipients"])
    ok = True
    print(f"  one message to {recipients} recipients; best of {args.rounds} round(s); "
          f"peak RSS is the highest of the runs; load average at the end "
          f"{load[0]:.1f} {load[1]:.1f} on {os.cpu_count()} CPUs\n")
    print(f"  {'measure':<44} {'value':>12}  {'target':<10} status")
    for command in ("match", "serve"):
        name = "notifier match --described" if command == "match" else "notifier serve"
        until = "first result" if command == "match" else "/healthz 200"
        full, snap = best[(command, False)], best[(command, True)]
        full_mb = max(r["rss_mb"] for r in results[(command, False)])
        snap_mb = max(r["rss_mb"] for r in results[(command, True)])
        passed = snap["seconds"] <= TARGET_S
        small = snap_mb <= TARGET_MB
        ok = ok and passed and small
        print(row(f"{name}: start to {until}", f"{snap['seconds']:.2f} s", "<= 5 s", passed))
        print(row("  peak RSS", f"{snap_mb:.0f} MB", "<= 300 MB", small))
        print(row("  full load (snapshot off): start-up", f"{full['seconds']:.2f} s"))
        print(row("  full load (snapshot off): peak RSS", f"{full_mb:.0f} MB"))
        print(row("  ratio full / snapshot: time", f"{full['seconds'] / snap['seconds']:.1f}x"))
        print(row("  ratio full / snapshot: RSS", f"{full_mb / snap_mb:.1f}x"))
        if command == "serve":
            kids = max((r["children_mb"] for r in results[(command, True)]), key=len)
            print(row("  children (HTTP, sender), peak RSS each",
                      ", ".join(f"{mb:.0f}" for mb in kids) + " MB"))
    print(row("first start, no snapshot yet (match): start-up", f"{first['seconds']:.2f} s"))
    print(row("  (loads every rule, then writes the snapshot)", f"{first['rss_mb']:.0f} MB"))
    print(row("same recipients, snapshot and full load", "yes" if agree else "NO", "yes",
              agree))
    if not agree:
        return 2
    if args.quick:
        print("  quick run: the targets are for the full run; not enforced")
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
