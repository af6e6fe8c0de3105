"""The RabbitMQ here (127.0.0.1:5672, guest/guest), with names of the test's own.

Every test gets a unique prefix for its queues, exchanges and topics
(:class:`Broker`); whatever it declared under that prefix is deleted after it.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from notifier.config import Config, config_from_dict
from tests.conftest import require_service

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass
class Broker:
    """The test's corner of the broker: ``prefix`` names its queues and topics."""

    prefix: str
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return f"{self.prefix}.q"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    def amqp_section(self) -> dict[str, Any]:
        """``[bus.amqp]`` for notifier: our queue, bound to our topics only."""
        self.queues += [self.queue, self.dead_queue]
        self.exchanges.append(self.dead_exchange)
        return {"queue": self.queue, "dead_letter_queue": self.dead_queue,
                "dead_letter_exchange": self.dead_exchange, "reconnect_base": 0.1,
                "reconnect_cap": 1.0,
                "bindings": [{"exchange": "amq.topic", "routing_keys": [f"#.{self.prefix}.#"]}]}

    def config(self, tmp_path: Path, **extra: Any) -> Config:
        data: dict[str, Any] = {"bus": {"relay_inbound": URL, "endpoints": [URL],
                                        "embedded_relay": False, "publish_timeout": 5.0,
                                        "amqp": self.amqp_section()}, **extra}
        return config_from_dict(data, str(tmp_path / "notifier.toml"))

    def toml(self) -> str:
        """The ``[bus]`` part of a config file, as notifier's commands read it."""
        section = self.amqp_section()
        # embedded_relay is left true: on AMQP there is no relay, and serve runs none.
        return (f'[bus]\nrelay_inbound = "{URL}"\nendpoints = ["{URL}"]\n'
                f"\n[bus.amqp]\n"
                f'queue = "{section["queue"]}"\n'
                f'dead_letter_queue = "{section["dead_letter_queue"]}"\n'
                f'dead_letter_exchange = "{section["dead_letter_exchange"]}"\n'
                f"reconnect_base = 0.1\nreconnect_cap = 1.0\n\n"
                f'[[bus.amqp.bindings]]\nexchange = "amq.topic"\n'
                f'routing_keys = ["#.{self.prefix}.#"]\n')

    def channel(self) -> Any:
        """A channel of a fresh connection of the test's own (close its connection after)."""
        return pika.BlockingConnection(pika.URLParameters(URL)).channel()

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those delivered and not acked)."""
        channel = self.channel()
        try:
            return channel.queue_declare(queue, passive=True).method.message_count
        finally:
            channel.connection.close()

    def get_all(self, queue: str) -> list[tuple[Any, Any, bytes]]:
        """Take every ready message off ``queue`` (acked): ``(method, properties, body)``."""
        channel = self.channel()
        got = []
        try:
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return got
                got.append((method, properties, body))
        finally:
            channel.connection.close()

    def cleanup(self) -> None:
        channel = self.channel()
        try:
            for queue in self.queues:
                channel.queue_delete(queue)
            for exchange in self.exchanges:
                channel.exchange_delete(exchange)
        finally:
            channel.connection.close()


def close_connections(name: str) -> int:
    """Close, from the broker's side, the connections whose name contains ``name``."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    closed = 0
    for line in out.splitlines():
        if name in line:
            pid = line.split("\t", 1)[0]
            subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test: cut"],
                           capture_output=True, timeout=30, check=True)
            closed += 1
    return closed


@pytest.fixture
def broker() -> Iterator[Broker]:
    require_service("RabbitMQ", 5672)
    b = Broker(f"nt{uuid.uuid4().hex[:10]}")
    try:
        yield b
    finally:
        b.cleanup()
