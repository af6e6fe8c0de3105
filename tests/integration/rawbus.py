"""Raw frames onto a relay, and a ``notifier serve`` set up to receive hostile ones.

:class:`RawPublisher` sends whatever frames a test makes (wrong counts, bad
JSON, huge topics) to the relay's inbound socket, as any peer on the bus
could. :class:`HostileWorld` runs ``notifier serve`` with one good user,
``alice``, whose rule sends every message on :data:`TOPIC_GLOB` to her feed,
and any number of users whose records were written straight into the
database, bypassing validation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import zmq
from sqlalchemy import insert, select, update

from notifier.bus.envelope import EnvelopeBuilder
from notifier.config import load_config
from notifier.storage import Store
from notifier.storage.engine import WRITE_OPTION
from notifier.storage.feeds import FeedStore
from notifier.storage.schema import changes, users
from tests.conftest import free_port, run, wait_for
from tests.integration.serveproc import ServeProcess, merge, write_toml

TOPIC_GLOB = "*.hostile.*"
MODNAME = "hostile"


class RawPublisher:
    """An XPUB socket connected to ``address`` that sends frames as given.

    It waits for the relay's subscription first, and never drops (XPUB_NODROP):
    whatever it sends reaches the relay.
    """

    def __init__(self, address: str, timeout: float = 10.0):
        self._ctx = zmq.Context(io_threads=1)
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, 5000)
        self._sock.setsockopt(zmq.XPUB_NODROP, 1)
        self._sock.setsockopt(zmq.SNDTIMEO, 10000)
        self._sock.connect(address)
        if not self._sock.poll(int(timeout * 1000), zmq.POLLIN):
            self.close()
            raise AssertionError(f"the relay at {address} did not subscribe in {timeout} s")
        self._sock.recv()
        self.builder = EnvelopeBuilder("org.fedoraproject", "dev", username="tester")

    def send(self, *frames: bytes) -> None:
        self._sock.send_multipart(list(frames))

    def good(self, text: str) -> str:
        """Send a good message whose summary is ``text``; return its msg_id."""
        topic, payload = self.builder.encode(MODNAME, "thing.happened", {"log": text})
        self.send(topic, payload)
        return json.loads(payload)["msg_id"]

    def close(self) -> None:
        if not self._sock.closed:
            self._sock.close()
        self._ctx.term()


class HostileWorld:
    """``notifier serve`` on a fresh database, with alice and the hostile users given."""

    def __init__(self, tmp: Path, *, database_url: str | None = None,
                 extra: dict[str, Any] | None = None):
        self.tmp = tmp
        self.http = f"127.0.0.1:{free_port()}"
        self.inbound = f"tcp://127.0.0.1:{free_port()}"
        self.database_url = database_url or f"sqlite:///{tmp / 'notifier.db'}"
        self.config_path = write_toml(tmp / "notifier.toml", merge(
            {"database_url": self.database_url,
             "bus": {"relay_inbound": self.inbound,
                     "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
             "http": {"listen": self.http},
             "email": {"maildir": str(tmp / "Maildir")},
             "delivery": {"retry_base": 0.2, "retry_max": 1.0}},
            extra or {}))
        self.config = load_config(self.config_path)
        self.serve = ServeProcess(self.config_path, self.http, tmp / "serve.log")
        self.store = Store(self.database_url)
        self.feeds = FeedStore.from_config(self.config)
        self.cli("users", "import", "-", input=json.dumps(
            [{"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice"]}]))
        self.publisher: RawPublisher | None = None

    def cli(self, *args: str, input: str | None = None) -> str:
        result = run("notifier", *args, "--config", str(self.config_path), input=input)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def rules(self, names: Iterable[str], destinations: Sequence[str]) -> None:
        """A rule for each of ``names`` sending what :data:`TOPIC_GLOB` matches."""
        self.cli("rules", "import", "-", input=json.dumps([
            {"user": name, "name": "hostile", "track": {"kind": "topics",
                                                        "patterns": [TOPIC_GLOB]},
             "destinations": list(destinations)} for name in names]))

    def write_user(self, name: str, **fields: Any) -> None:
        """Store a user record as given, unchecked; a running service hears of it."""
        row = {"emails": [], "ircnicks": [], "groups": [], "delivery": None, **fields}
        now = time.time()
        with self.store.write_lock, self.store.engine.connect() as conn, conn.execution_options(
                **{WRITE_OPTION: True}).begin():
            exists = conn.execute(select(users.c.id).where(users.c.name == name)).first()
            if exists is None:
                conn.execute(insert(users).values(name=name, feed_token=f"token-{name}",
                                                  created_at=now, updated_at=now, **row))
            else:
                conn.execute(update(users).where(users.c.name == name)
                             .values(updated_at=now, **row))
            conn.execute(insert(changes).values(kind="user", op="upsert", key1=name, at=now))

    def start(self) -> None:
        self.serve.start()
        self.publisher = RawPublisher(self.inbound)
        self.wait_flowing()

    def wait_flowing(self, timeout: float = 20.0) -> None:
        """Publish probes until one reaches alice's feed: serve is subscribed to the relay."""
        assert self.publisher is not None
        publisher = self.publisher
        sent: list[str] = []

        def arrived() -> bool:
            if self.delivered() & set(sent):
                return True
            sent.append(publisher.good(f"probe {len(sent)}"))  # another, until one is
            return False

        wait_for(arrived, "a probe to reach alice's feed", timeout, context=self.serve.log,
                 interval=0.1)

    def delivered(self) -> set[str]:
        """The msg_ids in alice's feed."""
        return {item.msg_id for item in self.feeds.items("alice", 100000)}

    def wait_delivered(self, msg_ids: Iterable[str], timeout: float = 20.0) -> None:
        """Wait until every one of ``msg_ids`` is in alice's feed."""
        wanted = set(msg_ids)
        wait_for(lambda: wanted <= self.delivered(), f"{len(wanted)} good messages delivered",
                 timeout, context=lambda: f"missing: {sorted(wanted - self.delivered())[:5]}\n"
                                          + self.serve.log())

    def rejected(self) -> list[dict[str, Any]]:
        out = self.cli("history", "rejected", "--json")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        self.serve.ensure_stopped()
        self.feeds.close()
        self.store.close()
