#!/usr/bin/env python3
"""What the inbox adds to the ingest: the recording transaction, and explaining matches.

1. **Recording.** Batches of ``--batch`` messages, each for ``--recipients``
   users on one destination, are recorded with
   :meth:`notifier.storage.outbox.Outbox.record_and_claim` into a fresh
   database, alternately without and with their inbox rows (one per user
   and message), so both see the same database size and the same machine
   load. Reports the median time per batch of each, and the difference per
   message.
2. **Explaining.** The pipeline matches with ``explain=True`` so that the
   inbox keeps why each rule matched. ``--users`` users each own a few
   packages and have an ``artifacts-owned`` rule; messages name one to three
   packages. Reports the median time of matching every message without and
   with the explanation.

Usage::

    benchmarks/inbox.py [--database-url URL] [--batches 200] [--batch 100]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from notifier.notification import Notification
from notifier.rules import Matcher, parse_rule
from notifier.storage import Store
from notifier.storage.inbox import inbox_row
from notifier.storage.outbox import Outbox

TOPIC = "org.fedoraproject.prod.bodhi.update.comment"


def batch(start: int, size: int, recipients: int, users: int) -> tuple[list[Any], list[Any],
                                                                       list[Any]]:
    envelopes, notes, rows = [], [], []
    for n in range(start, start + size):
        msg_id = f"bench-{n}"
        envelopes.append({"msg_id": msg_id, "topic": TOPIC, "timestamp": time.time(),
                          "msg": {"comment": f"comment {n}"}})
        for r in range(recipients):
            user = f"user{(n * 7 + r) % users}"
            notes.append((Notification(
                user=user, destination="rss", address=user, msg_id=msg_id, topic=TOPIC,
                app="bodhi", content={"title": f"comment {n}", "content": "<p>c</p>"},
                rules=("mine",)), "pending"))
            rows.append(inbox_row(user, msg_id, title=f"comment {n}",
                                  link="https://example.org/u/1", app="bodhi", topic=TOPIC,
                                  severity="info", timestamp=time.time(), rules=["mine"],
                                  why={"mine": f"package 'p{n}' is owned by {user}"}))
    return envelopes, notes, rows


def recording(url: str, batches: int, size: int, recipients: int, users: int) -> None:
    with Store(url) as store:
        outbox = Outbox(store)
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(batches):
            with_inbox = i % 2 == 1
            envelopes, notes, rows = batch(i * size, size, recipients, users)
            started = time.perf_counter()
            outbox.record_and_claim(envelopes, notes, {"rss": size * recipients},
                                    inbox=rows if with_inbox else ())
            times[with_inbox].append(time.perf_counter() - started)
    without, with_ = (statistics.median(times[k]) * 1000 for k in (False, True))
    print(f"recording {batches} batches of {size} messages x {recipients} recipients "
          f"({store.dialect}):")
    print(f"  median per batch: without inbox {without:.2f} ms, with inbox {with_:.2f} ms "
          f"(+{(with_ - without) / without * 100:.0f}%)")
    print(f"  added per message: {(with_ - without) / size * 1000:.0f} us "
          f"({(with_ - without) / size / recipients * 1000:.0f} us per inbox row)")


def explaining(users: int, messages: int) -> None:
    rng = random.Random(1)
    dests = ["rss"]
    rules = [parse_rule({"user": f"user{u}", "name": "mine",
                         "track": {"kind": "artifacts-owned"}, "destinations": dests},
                        destinations=dests) for u in range(users)]
    ownership = [(f"p{p}", "user", f"user{p % users}") for p in range(users * 3)]
    matcher = Matcher(rules, ownership)
    records = [{"msg_id": str(n), "topic": TOPIC, "app": "bodhi", "severity": "info",
                "usernames": [], "agent": None,
                "packages": [f"p{rng.randrange(users * 3)}" for _ in range(rng.randint(1, 3))]}
               for n in range(messages)]
    result = {}
    for explain in (False, True, False, True, False, True):
        started = time.perf_counter()
        for record in records:
            matcher.match(record, explain=explain)
        result.setdefault(explain, []).append(time.perf_counter() - started)
    plain, explained = (statistics.median(result[k]) / messages * 1e6 for k in (False, True))
    print(f"matching {messages} messages against {users} rules:")
    print(f"  per message: {plain:.1f} us, explained {explained:.1f} us "
          f"(+{explained - plain:.1f} us)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--messages", type=int, default=20000, help="messages to match")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        recording(url, args.batches, args.batch, args.recipients, args.users)
    explaining(args.users, args.messages)


if __name__ == "__main__":
    main()
