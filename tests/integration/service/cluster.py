"""Several real ``notifier serve`` workers on one PostgreSQL schema and one RabbitMQ queue.

Every :class:`Cluster` has a schema, a queue and topics of its own, and a
real SMTP server (aiosmtpd) that keeps every mail, so a test counts exactly
what arrived, and how many times: each message's topic is in the
``X-Notifier-Topic`` header of its mail.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pika
import psycopg

from notifier.storage import Store
from tests.conftest import free_port, run, wait_for
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.bus.conftest import URL, Broker
from tests.integration.serveproc import ServeProcess, write_toml

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def admin(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


class Cluster:
    """Workers sharing ``self.url`` and the broker's queue; mail to ``self.smtp``."""

    def __init__(self, tmp_path: Path, broker: Broker, smtp: SmtpPeer,
                 settings: dict[str, Any] | None = None):
        self.tmp = tmp_path
        self.broker = broker
        self.smtp = smtp
        #: more config tables every worker gets (``{"irc": {...}}``)
        self.settings = settings or {}
        self.schema = f"notifier_workers_{uuid.uuid4().hex[:10]}"
        #: every connection of this cluster's workers says so: pg_terminate_backend finds them
        self.application = f"nw-{uuid.uuid4().hex[:10]}"
        admin(f'CREATE SCHEMA "{self.schema}"')
        query = urllib.parse.urlencode({"application_name": self.application,
                                        "options": f"-csearch_path={self.schema}"})
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?{query}"
        self.workers: dict[str, ServeProcess] = {}
        self._store: Store | None = None
        self.first = self.config("setup")

    @property
    def topic_base(self) -> str:
        return f"org.fedoraproject.prod.{self.broker.prefix}"

    def config(self, name: str, extra: dict[str, Any] | None = None) -> Path:
        path = self.tmp / f"{name}.toml"
        write_toml(path, {"database_url": self.url,
                          "http": {"listen": f"127.0.0.1:{free_port()}"},
                          "email": {**self.smtp.config()["email"], "connections": 2},
                          **self.settings, **(extra or {})})
        path.write_text(path.read_text() + "\n" + self.broker.toml())
        return path

    def cli(self, *args: str) -> str:
        result = run("notifier", *args, "--config", str(self.first), timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def load(self, kind: str, records: list[dict[str, Any]]) -> None:
        path = self.tmp / f"{kind}-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(records))
        self.cli(kind, "import", str(path))

    def setup(self) -> None:
        """alice gets mail for every message of the cluster's topics; bob gets none yet;
        carol and dave get digests of five (their rules come later)."""
        self.load("users", [
            {"name": "alice", "emails": ["alice@example.org"]},
            {"name": "bob", "emails": ["bob@example.org"]},
            {"name": "carol", "emails": ["carol@example.org"],
             "delivery": {"email": {"digest": {"every": "1d", "max_items": 5}}}},
            {"name": "dave", "emails": ["dave@example.org"],
             "delivery": {"email": {"digest": {"every": "1d", "max_items": 5}}}}])
        self.load("rules", [self.rule("alice", "all", "*")])

    def rule(self, user: str, name: str, pattern: str,
             destinations: tuple[str, ...] = ("email",)) -> dict[str, Any]:
        return {"user": user, "name": name, "destinations": list(destinations),
                "track": {"kind": "topics", "patterns": [f"*.{self.broker.prefix}.{pattern}"]}}

    def start(self, name: str, role: str = "all") -> ServeProcess:
        config = self.config(name)
        http = config.read_text().split('listen = "', 1)[1].split('"', 1)[0]
        serve = ServeProcess(config, http, self.tmp / f"{name}.log",
                             args=("--role", role) if role != "all" else ())
        self.workers[name] = serve
        serve.start(timeout=40)
        return serve

    def logs(self) -> str:
        """Each worker's log, and the outbox's rows by state and claim (a failure's context)."""
        rows = admin(f'SELECT destination, state, claimed_by IS NOT NULL, count(*) FROM '
                     f'"{self.schema}".outbox GROUP BY 1, 2, 3')
        return "\n".join([f"--- {name}\n{serve.log()[-6000:]}"
                          for name, serve in self.workers.items()] + [f"--- outbox: {rows}"])

    def publish(self, names: Iterable[str]) -> list[str]:
        """Publish a message per name, each confirmed by the broker; their topics."""
        connection = pika.BlockingConnection(pika.URLParameters(URL))
        topics = []
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for name in names:
                topic = f"{self.topic_base}.{name}"
                channel.basic_publish(
                    "amq.topic", topic, json.dumps({"name": name}).encode(),
                    pika.BasicProperties(message_id=str(uuid.uuid4()), delivery_mode=2,
                                         content_type="application/json",
                                         headers={"fedora_messaging_schema": "base.message"}),
                    mandatory=True)
                topics.append(topic)
        finally:
            connection.close()
        return topics

    def mailed(self, to: str = "alice@example.org") -> Counter[str]:
        """How many mails each topic brought to ``to`` (digests not counted)."""
        with self.smtp.handler.changed:
            received = list(self.smtp.handler.messages)
        count: Counter[str] = Counter()
        for mail in received:
            message = mail.message
            if to in mail.rcpt_tos and message["X-Notifier-Digest"] is None:
                count[str(message["X-Notifier-Topic"])] += 1
        return count

    def first_arrivals(self, to: str = "alice@example.org") -> dict[str, float]:
        """When the first mail of each topic arrived (time.monotonic())."""
        with self.smtp.handler.changed:
            received = list(self.smtp.handler.messages)
        first: dict[str, float] = {}
        for mail in received:
            if to in mail.rcpt_tos:
                first.setdefault(str(mail.message["X-Notifier-Topic"]), mail.at)
        return first

    def digests(self, to: str) -> list[Any]:
        with self.smtp.handler.changed:
            received = list(self.smtp.handler.messages)
        return [m.message for m in received
                if to in m.rcpt_tos and m.message["X-Notifier-Digest"] is not None]

    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.url, create=False)
        return self._store

    def health(self, serve: ServeProcess) -> dict[str, Any]:
        _status, _headers, body = serve.get("/healthz")
        report: dict[str, Any] = json.loads(body)
        return report

    def leading_metric(self, serve: ServeProcess) -> dict[str, float]:
        """``notifier_leading`` of ``serve``'s /metrics, by part."""
        _status, _headers, body = serve.get("/metrics")
        found = {}
        for line in body.decode().splitlines():
            if line.startswith("notifier_leading{"):
                part = line.split('part="', 1)[1].split('"', 1)[0]
                found[part] = float(line.rsplit(" ", 1)[1])
        return found

    def caught_up(self, *workers: ServeProcess, timeout: float = 10) -> None:
        """Wait for every worker's matcher to reflect the change log as it stands."""
        last = self.store().last_change()
        for worker in workers:
            wait_for(lambda w=worker: self.health(w)["changes_seen"] >= last,
                     "the change to reach every worker", timeout=timeout, interval=0.05)

    def terminate_connections(self) -> int:
        """``pg_terminate_backend`` every connection of this cluster's workers."""
        rows = admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s", self.application)
        return len(rows)

    def close(self) -> None:
        for serve in self.workers.values():
            serve.ensure_stopped()
        if self._store is not None:
            self._store.close()
        admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
