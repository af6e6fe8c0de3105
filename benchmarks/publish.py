#!/usr/bin/env python3
"""Publishing rate through the relay: notifier.publish vs fedmsg.publish vs raw pyzmq.

All three send to the same `notifier relay` (a separate process), in
interleaved rounds, with a subscriber process behind the relay counting what
arrives, so a rate only counts if every message got through. Rates are
messages handed to the bus per second by the publishing loop; figures are
medians over the rounds.

    .venv/bin/python benchmarks/publish.py [--messages 50000] [--rounds 5]

Targets (same run): notifier >= 2.5x fedmsg (aim 3x), and >= 50% of raw
pyzmq (aim 60%).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notifier.bus.envelope import EnvelopeBuilder  # noqa: E402
from notifier.bus.publisher import Publisher  # noqa: E402
from notifier.config import config_from_dict  # noqa: E402

MSG = {"test": "Hello World", "user": "alice", "package": "kernel", "n": 0}

COUNTER = r"""
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.SUB); s.setsockopt(zmq.RCVHWM, 0)
s.setsockopt(zmq.SUBSCRIBE, b""); s.connect(sys.argv[1])
ctl = ctx.socket(zmq.PAIR); ctl.connect(sys.argv[2])
n = 0; poller = zmq.Poller(); poller.register(s, zmq.POLLIN); poller.register(ctl, zmq.POLLIN)
while True:
    ready = dict(poller.poll())
    if s in ready:
        while True:
            try:
                s.recv_multipart(zmq.NOBLOCK); n += 1
            except zmq.Again:
                break
    if ctl in ready:
        cmd = ctl.recv()
        if cmd == b"quit":
            break
        ctl.send_string(str(n))
"""


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Counter:
    """A subscriber process behind the relay that counts what arrives."""

    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.ctl = self.ctx.socket(zmq.PAIR)
        ctl_port = port()
        self.ctl.bind(f"tcp://127.0.0.1:{ctl_port}")
        self.proc = subprocess.Popen([sys.executable, "-c", COUNTER, endpoint,
                                      f"tcp://127.0.0.1:{ctl_port}"])

    def count(self) -> int:
        self.ctl.send(b"count")
        return int(self.ctl.recv())

    def wait_for(self, total: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while (n := self.count()) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        return n

    def close(self) -> None:
        self.ctl.send(b"quit")
        self.proc.wait(10)
        self.ctl.close()
        self.ctx.term()


def run_notifier(publisher: Publisher, n: int) -> float:
    publish = publisher.publish
    started = time.perf_counter()
    for _ in range(n):
        publish("testing", MSG, "bench")
    return n / (time.perf_counter() - started)


def run_fedmsg(n: int) -> float:
    import fedmsg

    publish = fedmsg.publish
    started = time.perf_counter()
    for _ in range(n):
        publish(topic="testing", msg=MSG, modname="bench")
    return n / (time.perf_counter() - started)


def run_raw(sock: zmq.Socket, frames: list[tuple[bytes, bytes]]) -> float:
    send = sock.send_multipart
    started = time.perf_counter()
    for f in frames:
        send(f)
    return len(frames) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50000, help="per round and contender")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.messages

    inbound, outbound = f"tcp://127.0.0.1:{port()}", f"tcp://127.0.0.1:{port()}"
    workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
    conf = workdir / "notifier.toml"
    conf.write_text(f'[bus]\nrelay_inbound = "{inbound}"\nendpoints = ["{outbound}"]\n')
    relay = subprocess.Popen([str(Path(sys.executable).parent / "notifier"), "relay",
                              "--config", str(conf)], stderr=subprocess.DEVNULL)
    counter = Counter(outbound)
    (workdir / "fedmsg.d").mkdir()
    (workdir / "fedmsg.d" / "bench.py").write_text(
        f"config = dict(topic_prefix='org.fedoraproject', environment='dev',\n"
        f"    endpoints={{'relay_outbound': ['{outbound}']}}, relay_inbound='{inbound}',\n"
        f"    zmq_enabled=True, sign_messages=False, validate_signatures=False,\n"
        f"    post_init_sleep=0.5, zmq_linger=1000, high_water_mark=0, io_threads=1)\n")
    os.chdir(workdir)  # fedmsg reads its config from ./fedmsg.d
    try:
        config = config_from_dict({"bus": {"relay_inbound": inbound, "endpoints": [outbound],
                                           "publish_timeout": 20.0}})
        publisher = Publisher(config)
        # Wait until the counter is behind the relay before anything is counted.
        while counter.count() == 0:
            publisher.publish("warmup", {}, "bench")
            time.sleep(0.05)

        import fedmsg

        fedmsg.init(active=True, name="relay_inbound")

        raw_ctx = zmq.Context()
        raw = raw_ctx.socket(zmq.PUB)
        raw.setsockopt(zmq.SNDHWM, 0)
        raw.connect(inbound)
        time.sleep(0.5)  # raw PUB has no handshake: give the subscription time to arrive
        builder = EnvelopeBuilder("org.fedoraproject", "dev")
        frames = [builder.encode("bench", "testing", MSG) for _ in range(n)]

        total = counter.count()
        rates: dict[str, list[float]] = {"notifier": [], "fedmsg": [], "raw": []}
        lost: dict[str, int] = {k: 0 for k in rates}
        for r in range(args.rounds):
            for name, job in (("notifier", lambda: run_notifier(publisher, n)),
                              ("fedmsg", lambda: run_fedmsg(n)),
                              ("raw", lambda: run_raw(raw, frames))):
                rates[name].append(job())
                total += n
                got = counter.wait_for(total)
                lost[name] += total - got
                total = got
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()),
                  file=sys.stderr)
        med = {k: statistics.median(v) for k, v in rates.items()}
        # Ratios are paired per round (same moment, same machine load), then the median.
        ours = rates["notifier"]
        vs_fedmsg = statistics.median(a / b for a, b in zip(ours, rates["fedmsg"], strict=True))
        vs_raw = statistics.median(a / b for a, b in zip(ours, rates["raw"], strict=True))
        print(f"\npublish rate through the relay, median of {args.rounds} rounds x {n:,} messages")
        print(f"  notifier.publish      {med['notifier']:>10,.0f} msg/s")
        print(f"  fedmsg.publish 1.1.7  {med['fedmsg']:>10,.0f} msg/s")
        print(f"  raw pyzmq (ceiling)   {med['raw']:>10,.0f} msg/s")
        print("  ratios: median of the per-round ratios")
        print(f"  notifier / fedmsg     {vs_fedmsg:>10.2f}x   target >= 2.5x (aim 3x)  "
              f"{'PASS' if vs_fedmsg >= 2.5 else 'FAIL'}")
        print(f"  notifier / raw        {vs_raw:>10.0%}    target >= 50% (aim 60%)  "
              f"{'PASS' if vs_raw >= 0.5 else 'FAIL'}")
        print("  lost: " + ", ".join(f"{k} {v}" for k, v in lost.items()))
        print(json.dumps({"median": med, "ratio_vs_fedmsg": vs_fedmsg, "ratio_vs_raw": vs_raw,
                          "lost": lost}))
        publisher.close()
        raw.close()
        raw_ctx.term()
        return 0 if lost["notifier"] == 0 else 1
    finally:
        counter.close()
        relay.terminate()
        relay.wait(10)


if __name__ == "__main__":
    sys.exit(main())
