"""``notifier bridge`` between our ZeroMQ relay and the RabbitMQ here, both ways at once.

Order shows that nothing loops: each direction is one sequence, so once a
later message came through, an echo of an earlier one would have come first.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pika
import pytest

from notifier.bus.envelope import decode_envelope
from notifier.bus.publisher import Publisher
from notifier.bus.transports import open_subscriber
from tests.conftest import BIN, wait_for
from tests.integration.bus.conftest import URL, Broker
from tests.integration.bus.test_amqp_fedora_messaging import fm_publish

pytestmark = pytest.mark.integration


class Watcher:
    """A queue of the test's own on amq.topic, bound to the test's topics."""

    def __init__(self, broker: Broker):
        self.queue = f"{broker.prefix}.watch"
        broker.queues.append(self.queue)
        self.channel = broker.channel()
        self.channel.queue_declare(self.queue)
        self.channel.queue_bind(self.queue, "amq.topic", f"#.{broker.prefix}.#")
        self.seen: list[tuple[str, dict, dict]] = []  # (message_id, headers, body)

    def take(self) -> list[tuple[str, dict, dict]]:
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.seen
            self.seen.append((properties.message_id, properties.headers or {},
                              json.loads(body)))

    def close(self) -> None:
        self.channel.connection.close()


def _bridge_queue_consumed(queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count > 0
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_bridge_both_ways_keeps_ids_and_never_loops(tmp_path: Path, bus_config, relay,
                                                    broker: Broker) -> None:
    queue = f"{broker.prefix}.bridge"
    broker.queues += [queue, f"{queue}.dead"]
    broker.exchanges.append(f"{queue}.dead")
    relay_in, relay_out = bus_config.bus.relay_inbound, bus_config.bus.endpoints[0]
    watcher = Watcher(broker)
    zmq_seen: list[dict] = []
    observer = open_subscriber([relay_out])
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "notifier"), "bridge", "--amqp", URL, "--from-zmq", relay_out,
             "--to-zmq", relay_in, "--queue", queue, "--routing-key", f"#.{broker.prefix}.#",
             "-v"], stdout=out, stderr=out)
    publisher = Publisher(bus_config)

    def zmq_take() -> list[dict]:
        while (frames := observer.recv(0)) is not None:
            zmq_seen.append(decode_envelope(*frames))
        return zmq_seen

    try:
        wait_for(lambda: _bridge_queue_consumed(queue), "the bridge to consume its queue",
                 timeout=30, context=log.read_text)

        # ZeroMQ -> AMQP. Probes until the bridge's subscription is up (ZeroMQ's slow joiner).
        def probe() -> bool:
            publisher.publish(topic="probe", modname=broker.prefix, msg={"probe": True})
            return any(body == {"probe": True} for _, _, body in watcher.take())

        wait_for(probe, "a probe to cross from ZeroMQ to AMQP", timeout=30, interval=0.3,
                 context=log.read_text)
        publisher.publish(topic="from.zmq", modname=broker.prefix, msg={"side": "zmq", "é": 1})
        [(mid, headers, body)] = wait_for(
            lambda: [m for m in watcher.take() if m[2].get("side") == "zmq"],
            "the ZeroMQ message on AMQP", context=log.read_text)
        [sent] = [e for e in wait_for(lambda: [e for e in zmq_take()
                                               if e["msg"].get("side") == "zmq"],
                                      "the ZeroMQ message at the relay")]
        assert mid == sent["msg_id"]
        assert body == {"side": "zmq", "é": 1}
        assert headers["fedora_messaging_schema"] == "base.message"
        assert headers["fedora_messaging_severity"] == 20
        assert headers["notifier_bridge"] == "zeromq"

        # AMQP -> ZeroMQ, with fedora-messaging's own publisher.
        msg_id = str(uuid.uuid4())
        topic = f"org.fedoraproject.prod.{broker.prefix}.from.amqp"
        fm_publish(tmp_path, {"topic": topic, "id": msg_id, "body": {"side": "amqp"},
                              "headers": {"fedora_messaging_schema": "base.message",
                                          "fedora_messaging_severity": 30}})
        [envelope] = wait_for(lambda: [e for e in zmq_take() if e["msg_id"] == msg_id],
                              "the AMQP message on ZeroMQ", context=log.read_text)
        assert envelope["topic"] == topic
        assert envelope["msg"] == {"side": "amqp"}
        assert envelope["username"] == "amqp-bridge"
        assert envelope["headers"]["fedora_messaging_severity"] == 30

        # One more each way; by then an echo of either would have shown.
        publisher.publish(topic="last", modname=broker.prefix, msg={"side": "last"})
        wait_for(lambda: any(m[2].get("side") == "last" for m in watcher.take()),
                 "the last ZeroMQ message on AMQP")
        zmq_take()
        assert [m[2] for m in watcher.seen].count({"side": "amqp"}) == 1
        assert [m[2].get("side") for m in watcher.seen].count("zmq") == 1
        assert sum(1 for e in zmq_seen if e["msg"].get("side") == "zmq") == 1
        assert sum(1 for e in zmq_seen if e["msg_id"] == msg_id) == 1
        assert broker.depth(f"{queue}.dead") == 0
    finally:
        publisher.close()
        observer.close()
        watcher.close()
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(20) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "carried" in log.read_text()
