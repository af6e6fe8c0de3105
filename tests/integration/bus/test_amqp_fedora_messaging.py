"""Interop with real fedora-messaging 3.x on the RabbitMQ here, and ``notifier serve`` on AMQP.

* ``fedora-messaging publish`` -> ``notifier serve`` stores it (id, headers kept) and
  delivers it to a feed;
* ``notifier-logger`` -> ``fedora-messaging consume``, whose schema classes read it;
* serve dead-letters a bad message, and goes on consuming after the broker cuts it off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pika
import pika.exceptions
import pytest

from notifier.storage import Store
from tests.conftest import BIN, free_port, run, wait_for
from tests.integration.bus.conftest import URL, Broker, close_connections
from tests.integration.serveproc import ServeProcess

pytestmark = pytest.mark.integration

FM = str(BIN / "fedora-messaging")


def fm_config(tmp_path: Path, queue: str | None = None, keys: tuple[str, ...] = ()) -> Path:
    """A fedora-messaging config for the broker here, consuming ``queue`` if given."""
    text = (f'amqp_url = "{URL}"\npublish_exchange = "amq.topic"\n'
            f'[client_properties]\napp = "notifier tests"\n')
    if queue:
        text += (f'[queues."{queue}"]\ndurable = false\nauto_delete = true\nexclusive = false\n'
                 f"arguments = {{}}\n\n[[bindings]]\nqueue = \"{queue}\"\n"
                 f'exchange = "amq.topic"\nrouting_keys = {json.dumps(list(keys))}\n')
    path = tmp_path / f"fm-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(text)
    return path


class Served:
    def __init__(self, tmp_path: Path, broker: Broker):
        self.tmp, self.broker = tmp_path, broker
        self.http = f"127.0.0.1:{free_port()}"
        self.config = tmp_path / "notifier.toml"
        self.config.write_text(
            f'database_url = "sqlite:///{tmp_path / "notifier.db"}"\n'
            f'[http]\nlisten = "{self.http}"\n\n' + broker.toml())
        users = [{"name": "alice", "emails": [], "ircnicks": [], "groups": []}]
        rules = [{"user": "alice", "name": "ours",
                  "track": {"kind": "topics", "patterns": [f"*.{broker.prefix}.*"]},
                  "destinations": ["rss"]}]
        (tmp_path / "users.json").write_text(json.dumps(users))
        (tmp_path / "rules.json").write_text(json.dumps(rules))
        self.cli("users", "import", str(tmp_path / "users.json"))
        self.cli("rules", "import", str(tmp_path / "rules.json"))
        self.serve = ServeProcess(self.config, self.http, tmp_path / "serve.log")
        self._store: Store | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run("notifier", *args, "--config", str(self.config))
        assert result.returncode == 0, result.stderr
        return result

    def feed_titles(self) -> list[str]:
        token = json.loads(self.cli("users", "show", "alice", "--json").stdout)["feed_token"]
        status, _, body = self.serve.get(f"/feeds/alice.atom?token={token}")
        assert status == 200
        return sorted(e.title for e in feedparser.parse(body).entries)

    def stored(self, msg_id: str) -> dict[str, Any] | None:
        if self._store is None:
            self._store = Store(f"sqlite:///{self.tmp / 'notifier.db'}", create=False)
        for row in self._store.message_rows():
            if row.msg_id == msg_id:
                return row.envelope
        return None

    def close(self) -> None:
        self.serve.ensure_stopped()
        if self._store is not None:
            self._store.close()


@pytest.fixture
def served(tmp_path: Path, broker: Broker) -> Iterator[Served]:
    s = Served(tmp_path, broker)
    s.serve.start()
    try:
        yield s
    finally:
        s.close()


def fm_publish(tmp_path: Path, message: dict[str, Any]) -> None:
    path = tmp_path / f"msg-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(message) + "\n")
    result = subprocess.run([FM, "--conf", str(fm_config(tmp_path)), "publish", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fedora_messaging_publish_reaches_notifier(served: Served, broker: Broker) -> None:
    msg_id = str(uuid.uuid4())
    topic = f"org.fedoraproject.prod.{broker.prefix}.build.complete"
    fm_publish(served.tmp, {
        "topic": topic, "id": msg_id, "body": {"build": 42, "owner": "alice"},
        "headers": {"fedora_messaging_schema": "base.message",
                    "fedora_messaging_severity": 30, "sent-at": "2026-01-02T03:04:05+00:00",
                    "fedora_messaging_user_alice": True}})
    envelope = wait_for(lambda: served.stored(msg_id), "notifier serve to store the message",
                        timeout=20, context=served.serve.log)
    assert envelope["topic"] == topic
    assert envelope["msg"] == {"build": 42, "owner": "alice"}
    headers = envelope["headers"]
    assert headers["fedora_messaging_schema"] == "base.message"
    assert headers["fedora_messaging_severity"] == 30
    assert headers["sent-at"] == "2026-01-02T03:04:05+00:00"
    assert headers["fedora_messaging_user_alice"] is True
    assert envelope["timestamp"] == 1767323045
    wait_for(lambda: len(served.feed_titles()) == 1, "the feed entry", timeout=20,
             context=served.serve.log)
    # acked once recorded: nothing left in the queue, nothing dead-lettered
    wait_for(lambda: broker.depth(broker.queue) == 0, "the queue to drain")
    assert broker.depth(broker.dead_queue) == 0


CALLBACK = '''
import json
from fedora_messaging.exceptions import HaltConsumer

def record(message):
    message.validate()
    with open(OUT, "a") as f:
        f.write(json.dumps({"class": type(message).__name__, "id": message.id,
                            "topic": message.topic, "body": message.body,
                            "severity": message.severity, "summary": message.summary,
                            "headers": message._headers}) + "\\n")
    raise HaltConsumer(exit_code=0)
'''


def _queue_has_consumer(queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count > 0
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_notifier_logger_reaches_fedora_messaging_consume(tmp_path: Path,
                                                          broker: Broker) -> None:
    out = tmp_path / "consumed.jsonl"
    callback = tmp_path / "callback.py"
    callback.write_text(f"OUT = {str(out)!r}\n" + CALLBACK)
    queue = f"{broker.prefix}.fm"
    broker.queues.append(queue)
    topic = f"org.fedoraproject.dev.{broker.prefix}.hello"
    config = tmp_path / "notifier.toml"
    config.write_text(broker.toml() + (
        f'\n[[meta.mappings]]\ntopic = "{topic}"\nusernames_paths = ["who"]\n'
        f'packages_paths = ["package"]\nseverity = "error"\n'))
    consumer = subprocess.Popen(
        [FM, "--conf", str(fm_config(tmp_path, queue, (topic,))), "consume",
         "--callback-file", f"{callback}:record"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _queue_has_consumer(queue), "fedora-messaging to consume", timeout=30)
        result = run("notifier-logger", "--config", str(config), f"--modname={broker.prefix}",
                     "--topic=hello", "--json-input",
                     "--message", json.dumps({"who": "bob", "package": "kernel", "n": 1}))
        assert result.returncode == 0, result.stderr
        assert consumer.wait(30) == 0, consumer.stdout.read() if consumer.stdout else ""
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
    [got] = [json.loads(line) for line in out.read_text().splitlines()]
    assert got["class"] == "Message"
    assert got["topic"] == topic
    assert got["body"] == {"who": "bob", "package": "kernel", "n": 1}
    assert got["severity"] == 40
    assert got["id"].startswith(time.strftime("%Y-"))
    headers = got["headers"]
    assert headers["fedora_messaging_schema"] == "base.message"
    assert headers["fedora_messaging_severity"] == 40
    assert headers["fedora_messaging_user_bob"] is True
    assert headers["fedora_messaging_rpm_kernel"] is True
    assert "sent-at" in headers and headers["priority"] == 0


def test_notifier_publish_id_is_the_amqp_message_id(tmp_path: Path, broker: Broker) -> None:
    """``notifier.publish`` in a program of its own, read back with fedora-messaging's parser."""
    config = tmp_path / "notifier.toml"
    config.write_text(broker.toml())
    # the queue, so that the publish is routed
    from notifier.bus.transports import open_subscriber
    from notifier.config import load_config

    bus = load_config(str(config)).bus
    open_subscriber(bus.endpoints, bus=bus, durable=True).close()
    program = (f"import notifier; notifier.init({str(config)!r}); "
               f"notifier.publish(topic='ping', modname={broker.prefix!r}, msg={{'x': 1}})")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "NOTIFIER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    [(method, properties, body)] = wait_for(lambda: broker.get_all(broker.queue), "the message")
    from fedora_messaging.message import get_message

    message = get_message(method.routing_key, properties, body)
    message.validate()
    assert message.id == properties.message_id
    assert message.body == {"x": 1}
    assert message.severity == 20
    assert message.topic == f"org.fedoraproject.dev.{broker.prefix}.ping"


def test_serve_dead_letters_bad_messages_and_survives_a_cut(served: Served,
                                                            broker: Broker) -> None:
    topic = f"org.fedoraproject.prod.{broker.prefix}.thing"
    channel = broker.channel()
    try:
        channel.confirm_delivery()
        channel.basic_publish("amq.topic", topic, b"{not json",
                              pika.BasicProperties(message_id="bad-1", delivery_mode=2))
    finally:
        channel.connection.close()
    dead = wait_for(lambda: broker.get_all(broker.dead_queue), "the bad message, dead-lettered",
                    timeout=20, context=served.serve.log)
    assert [body for _, _, body in dead] == [b"{not json"]
    assert served.serve.metric("notifier_messages_rejected_total") == 1
    assert broker.depth(broker.queue) == 0

    assert served.serve.proc is not None
    assert close_connections(f"notifier consumer pid {served.serve.proc.pid}") == 1
    msg_id = str(uuid.uuid4())
    fm_publish(served.tmp, {"topic": topic, "id": msg_id, "body": {"after": "the cut"},
                            "headers": {"fedora_messaging_schema": "base.message"}})
    wait_for(lambda: served.stored(msg_id), "serve to consume again after the cut", timeout=30,
             context=served.serve.log)
    assert "connected again to the AMQP broker" in served.serve.log()


def _queue_counts(queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages in ``queue``, as the broker counts them."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "messages_ready",
                          "messages_unacknowledged"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    for line in out.splitlines():
        name, ready, unacked = line.split("\t")
        if name == queue:
            return int(ready), int(unacked)
    raise AssertionError(f"no queue {queue}")


def test_a_message_is_acked_only_once_recorded_and_survives_kill_9(served: Served,
                                                                   broker: Broker) -> None:
    import sqlite3

    # The database refuses writes: serve holds the message, unacked, and waits.
    lock = sqlite3.connect(served.tmp / "notifier.db", timeout=10)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        msg_id = str(uuid.uuid4())
        fm_publish(served.tmp, {"topic": f"org.fedoraproject.prod.{broker.prefix}.held",
                                "id": msg_id, "body": {"held": True},
                                "headers": {"fedora_messaging_schema": "base.message"}})
        wait_for(lambda: _queue_counts(broker.queue) == (0, 1),
                 "serve to hold the message unacked", timeout=20, context=served.serve.log)
        # The ingest has it (received), and has not acked it: it cannot be recorded.
        wait_for(lambda: served.serve.metric("notifier_messages_received_total") == 1,
                 "the ingest to receive it", context=served.serve.log)
        assert _queue_counts(broker.queue) == (0, 1)
        assert served.stored(msg_id) is None
        served.serve.kill9()
        # Killed before it was recorded: the broker has it again.
        wait_for(lambda: _queue_counts(broker.queue) == (1, 0), "the message to be requeued")
    finally:
        lock.rollback()
        lock.close()
    served.serve.start()
    wait_for(lambda: served.stored(msg_id), "the message, stored after the restart", timeout=30,
             context=served.serve.log)
    wait_for(lambda: _queue_counts(broker.queue) == (0, 0), "the queue to drain")
    wait_for(lambda: len(served.feed_titles()) == 1, "the feed entry", timeout=20,
             context=served.serve.log)
