#!/usr/bin/env python3
"""How fast the web app's pages answer, with many rules and notifications in the database.

A fresh database gets ``--rules`` rules (a tenth of them alice's, the rest
spread over ``--users`` other users) and ``--notifications`` inbox rows from
the last 7 days (half of them alice's). The real server (uvicorn, in this
process) serves it; alice, an admin, signs in through a sign-in link, and
httpx asks for each page ``--requests`` times in turn (after a warm-up),
one request at a time. Reports each page's median and 95th percentile
against the target of 200 ms, and the figures as JSON on the last line.

Usage::

    benchmarks/pages.py [--database-url URL] [--rules 1000] [--notifications 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from notifier.config import config_from_dict
from notifier.storage import Store
from notifier.storage.credentials import Credentials
from notifier.storage.inbox import Inbox, inbox_row, write_rows
from notifier.storage.outbox import Outbox
from notifier.users.cache import UserCache
from notifier.web import WebServer

TARGET_MS = 200.0
ROWS_PER_WRITE = 5000


def fill(store: Store, users: int, rules: int, notifications: int) -> None:
    names = ["alice"] + [f"user{i}" for i in range(users)]
    store.import_users([{"name": n, "emails": [f"{n}@example.org"]} for n in names])
    own = max(1, rules // 10)
    store.upsert_rules([{
        "user": "alice" if i < own else names[1 + i % users], "name": f"rule {i}",
        "track": {"kind": "topics", "patterns": [f"org.example.*.app{i}.*"]},
        "filters": {"applications": ["koji"], "severities": ["info", "error"]},
        "destinations": ["email"]} for i in range(rules)])
    now = time.time()
    rows: list[dict[str, Any]] = []
    for n in range(notifications):
        user = "alice" if n % 2 == 0 else names[1 + n % users]
        rule = f"rule {n % own}" if user == "alice" else "other"
        rows.append(inbox_row(user, f"msg-{n}", title=f"Build {n} finished",
                              link=f"https://example.org/b/{n}", app="koji",
                              topic=f"org.example.prod.app{n % 50}.build", severity="info",
                              timestamp=now - 6 * 86400 * (1 - n / notifications),
                              rules=[rule], why={rule: "the topic matched"}))
        if len(rows) == ROWS_PER_WRITE:
            with store._transaction("benchmark inbox rows", write=True) as conn:
                write_rows(conn, rows, now)
            rows = []
    if rows:
        with store._transaction("benchmark inbox rows", write=True) as conn:
            write_rows(conn, rows, now)


def measure(base: str, paths: dict[str, str], link: str, requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.post(link).status_code == 303, "the sign-in link did not work"
        for _ in range(3):
            for path in paths.values():
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(requests):
            for name, path in paths.items():
                started = time.perf_counter()
                client.get(path).raise_for_status()
                times[name].append((time.perf_counter() - started) * 1000)
    for name, samples in times.items():
        samples.sort()
        out[name] = {"median_ms": round(statistics.median(samples), 1),
                     "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="default: SQLite in a temporary directory")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50, help="requests per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'pages.db'}"
        config = config_from_dict({
            "database_url": url, "http": {"listen": "127.0.0.1:0"},
            "email": {"maildir": str(Path(tmp) / "Maildir")},
            "web": {"admins": ["alice"]}}, str(Path(tmp) / "notifier.toml"))
        store = Store.from_config(config)
        started = time.perf_counter()
        fill(store, args.users, args.rules, args.notifications)
        print(f"filled {args.rules} rules and {args.notifications} notifications "
              f"({store.dialect}) in {time.perf_counter() - started:.1f} s")
        inbox = Inbox(store)
        first = inbox.page("alice", limit=25)
        paths = {"start": "/", "inbox": "/inbox",
                 "inbox, page 2": f"/inbox?cursor={first.next_cursor}",
                 "why": f"/inbox/{first.items[0].id}/why", "rules": "/rules",
                 "rule editor": "/rules/edit?rule=rule+0", "destinations": "/destinations",
                 "tokens": "/tokens", "settings": "/settings",
                 "new items (live)": f"/inbox/new?after={first.items[-1].id}",
                 "admin": "/admin"}
        web = WebServer(config, store=store, outbox=Outbox(store),
                        users=UserCache(config, store),
                        health=lambda kind: (True, {}), metrics=lambda: b"",
                        check_unsubscribe=lambda t: ("", ""), unsubscribe=lambda t: ("", ""))
        stopping = threading.Event()
        thread = threading.Thread(target=web.run, args=(stopping,), daemon=True)
        thread.start()
        host, port = web.address
        base = f"http://{host}:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz/live", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        link = f"{base}/signin/link/{Credentials(store).create_link('alice')}"
        try:
            figures = measure(base, paths, link, args.requests)
        finally:
            stopping.set()
            thread.join(15)
            web.close()
            store.close()
    print(f"{args.requests} requests per page, one at a time (target: p95 <= "
          f"{TARGET_MS:.0f} ms):")
    for name, f in figures.items():
        verdict = "ok" if f["p95_ms"] <= TARGET_MS else "SLOW"
        print(f"  {name:<14} median {f['median_ms']:7.1f} ms   p95 {f['p95_ms']:7.1f} ms   "
              f"{verdict}")
    print(json.dumps({"pages": figures, "target_ms": TARGET_MS}))


if __name__ == "__main__":
    main()
