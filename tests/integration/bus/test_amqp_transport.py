"""The AMQP transport against the RabbitMQ here: wire format, confirms, acks, dead letters,
reconnection."""

from __future__ import annotations

import json
import os
import time

import pytest

from notifier.bus.publisher import Publisher
from notifier.bus.transports import open_subscriber
from notifier.errors import PublishError
from notifier.meta import Describer
from tests.conftest import wait_for
from tests.integration.bus.conftest import Broker, close_connections

pytestmark = pytest.mark.integration


def _subscriber(config):  # the durable queue, as notifier serve consumes it
    return open_subscriber(config.bus.endpoints, bus=config.bus, durable=True)


def _receive(sub, n: int, timeout: float = 10.0) -> list[tuple[bytes, bytes, object]]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        frames = sub.recv(0.2)
        if frames is not None:
            got.append((*frames, sub.last_token()))
    assert len(got) == n, f"received {len(got)} of {n} messages"
    return got


def test_publish_follows_fedora_messagings_wire_format(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path, meta={"mappings": [{
        "topic": f"org.fedoraproject.dev.{broker.prefix}.build", "app": "koji",
        "usernames_paths": ["owner"], "packages_paths": ["package"], "groups_paths": ["group"],
        "severity": "warning"}]})
    _subscriber(config).close()  # the queue and its bindings exist from now on
    msg = {"owner": "alice", "package": "kernel", "group": "packager", "é": "ü"}
    with Publisher(config, describe=Describer(config).describe) as publisher:
        publisher.publish(topic="build", msg=msg, modname=broker.prefix)
    [(method, properties, body)] = wait_for(lambda: broker.get_all(broker.queue),
                                            "the message in the queue")
    assert method.exchange == "amq.topic"
    assert method.routing_key == f"org.fedoraproject.dev.{broker.prefix}.build"
    # json.dumps with its default separators and ASCII escapes (keys sorted, as fedmsg sends)
    assert json.loads(body) == msg
    assert body == json.dumps(msg, sort_keys=True).encode("utf-8")
    assert properties.content_type == "application/json"
    assert properties.content_encoding == "utf-8"
    assert properties.delivery_mode == 2
    assert properties.message_id.startswith(time.strftime("%Y-"))
    headers = properties.headers
    assert headers["fedora_messaging_schema"] == "base.message"
    assert headers["fedora_messaging_severity"] == 30
    assert headers["priority"] == 0
    assert abs(time.time() - _iso(headers["sent-at"])) < 60
    assert headers["fedora_messaging_user_alice"] is True
    assert headers["fedora_messaging_rpm_kernel"] is True
    assert headers["fedora_messaging_group_packager"] is True


def _iso(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text).timestamp()


def _config(tmp_path, broker: Broker, **amqp):
    from notifier.config import config_from_dict

    base = broker.config(tmp_path)
    return config_from_dict({"bus": {"endpoints": list(base.bus.endpoints),
                                     "relay_inbound": base.bus.relay_inbound,
                                     "publish_timeout": 5.0,
                                     "amqp": {**broker.amqp_section(), **amqp}}},
                            str(tmp_path / "n.toml"))


def test_an_unroutable_publish_is_an_error(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    with Publisher(config) as publisher:
        publisher.publish(topic="nobody.listens", msg={"a": 1}, modname=f"x{broker.prefix}x")
        with pytest.raises(PublishError, match="no queue is bound for .*nobody.listens"):
            publisher.flush()
        publisher.flush()  # reported once


def test_with_a_window_of_one_the_publish_itself_raises(tmp_path, broker: Broker) -> None:
    config = _config(tmp_path, broker, confirm_window=1)
    with Publisher(config) as publisher, pytest.raises(PublishError, match="no queue is bound"):
        publisher.publish(topic="nobody.listens", msg={"a": 1}, modname=f"x{broker.prefix}x")


def test_a_refusal_is_raised_by_the_next_publish_before_it_sends(tmp_path,
                                                                 broker: Broker) -> None:
    config = broker.config(tmp_path)
    sub = _subscriber(config)
    try:
        with Publisher(config) as publisher:
            publisher.publish(topic="lost", msg={"a": 1}, modname=f"x{broker.prefix}x")
            # The broker's answer arrives within the round trip; a later publish reports it.
            with pytest.raises(PublishError, match="no queue is bound"):
                for n in range(1000):
                    publisher.publish(topic="t", msg={"n": n}, modname=broker.prefix)
                    time.sleep(0.001)
            sent = n  # the publish that raised sent nothing
            publisher.flush()
        got = _receive(sub, sent)
        sub.commit([t for _, _, t in got])
        assert [json.loads(p)["msg"]["n"] for _, p, _ in got] == list(range(sent))
        assert sub.recv(0.3) is None
    finally:
        sub.close()


def test_the_broker_unreachable_is_an_error_naming_it(tmp_path, broker: Broker) -> None:
    from notifier.config import config_from_dict

    config = config_from_dict({"bus": {"relay_inbound": "amqp://guest:secret@127.0.0.1:1/"}},
                              str(tmp_path / "n.toml"))
    started = time.monotonic()
    with pytest.raises(PublishError, match=r"amqp://guest@127.0.0.1:1/") as info:
        Publisher(config, timeout=1.0)
    assert "secret" not in str(info.value)
    assert time.monotonic() - started < 5


def test_only_committed_messages_are_forgotten(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    _subscriber(config).close()
    with Publisher(config) as publisher:
        for i in range(3):
            publisher.publish(topic="t", msg={"n": i}, modname=broker.prefix)
    sub = _subscriber(config)
    first = _receive(sub, 3)
    sub.close()  # nothing committed: all three come back
    sub = _subscriber(config)
    again = _receive(sub, 3)
    assert [f[1] for f in again] == [f[1] for f in first]
    sub.commit([again[0][2], again[2][2]])
    sub.close()  # the middle one was not committed: only it comes back
    sub = _subscriber(config)
    [(_, payload, token)] = _receive(sub, 1)
    assert json.loads(payload)["msg"] == {"n": 1}
    sub.commit([token])
    assert sub.recv(0.5) is None
    sub.close()
    assert broker.depth(broker.queue) == 0


def test_a_rejected_message_is_dead_lettered_not_requeued(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    sub = _subscriber(config)
    with Publisher(config) as publisher:
        publisher.publish(topic="bad", msg={"bad": True}, modname=broker.prefix)
        publisher.publish(topic="good", msg={"good": True}, modname=broker.prefix)
    (_, _, bad), (_, _, good) = _receive(sub, 2)
    sub.reject([bad])
    sub.commit([good])
    assert sub.recv(0.5) is None
    sub.close()
    dead = wait_for(lambda: broker.get_all(broker.dead_queue), "the dead-lettered message")
    assert [json.loads(body) for _, _, body in dead] == [{"bad": True}]
    assert dead[0][1].headers["x-death"][0]["reason"] == "rejected"
    assert broker.depth(broker.queue) == 0


def test_the_consumer_reconnects_and_declares_its_queue_again(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    sub = _subscriber(config)
    try:
        assert sub.recv(0.2) is None
        assert close_connections(f"notifier consumer pid {os.getpid()}") == 1
        channel = broker.channel()
        channel.queue_delete(broker.queue)  # gone while we are away: declared again
        channel.connection.close()
        wait_for(lambda: sub.recv(0.2) is None and sub.connected, "the consumer to reconnect",
                 timeout=20)
        with Publisher(config) as publisher:
            publisher.publish(topic="after", msg={"after": "reconnect"}, modname=broker.prefix)
        [(_, payload, token)] = _receive(sub, 1)
        assert json.loads(payload)["msg"] == {"after": "reconnect"}
        sub.commit([token])
    finally:
        sub.close()


def test_a_publish_the_broker_refuses_is_an_error(tmp_path, broker: Broker) -> None:
    # A queue that refuses what it has no room for: the broker nacks the publish.
    full = f"{broker.prefix}.full"
    broker.queues.append(full)
    channel = broker.channel()
    channel.queue_declare(full, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.queue_bind(full, "amq.topic", f"#.{broker.prefix}.#")
    channel.connection.close()
    config = broker.config(tmp_path)
    with Publisher(config) as publisher:
        publisher.publish(topic="one", msg={"n": 1}, modname=broker.prefix)
        publisher.flush()
        publisher.publish(topic="two", msg={"n": 2}, modname=broker.prefix)
        with pytest.raises(PublishError, match=r"the broker refused message \S+ \(\S+\.two\)"):
            publisher.flush()
    assert broker.depth(full) == 1


def test_prefetch_bounds_what_is_held_unacked(tmp_path, broker: Broker) -> None:
    from notifier.config import config_from_dict

    base = broker.config(tmp_path)
    config = config_from_dict({"bus": {"endpoints": list(base.bus.endpoints),
                                       "relay_inbound": base.bus.relay_inbound,
                                       "amqp": {**broker.amqp_section(), "prefetch_count": 2}}},
                              str(tmp_path / "n.toml"))
    sub = _subscriber(config)
    try:
        with Publisher(config) as publisher:
            for i in range(5):
                publisher.publish(topic="t", msg={"n": i}, modname=broker.prefix)
        first = _receive(sub, 2)
        assert sub.recv(0.5) is None  # two held unacked: the broker sends no more
        sub.commit([t for _, _, t in first])
        rest = _receive(sub, 2)
        sub.commit([t for _, _, t in rest])
        last = _receive(sub, 1)
        sub.commit([t for _, _, t in last])
        assert [json.loads(p)["msg"]["n"] for _, p, _ in first + rest + last] == [0, 1, 2, 3, 4]
    finally:
        sub.close()


def test_a_publisher_cut_off_by_the_broker_connects_again(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    sub = _subscriber(config)
    try:
        with Publisher(config) as publisher:
            publisher.publish(topic="before", msg={"n": 1}, modname=broker.prefix)
            publisher.flush()  # confirmed: it is not sent again
            assert close_connections(f"notifier publisher pid {os.getpid()}") == 1
            publisher.publish(topic="after", msg={"n": 2}, modname=broker.prefix)
        got = _receive(sub, 2)
        sub.commit([t for _, _, t in got])
        assert [json.loads(p)["msg"]["n"] for _, p, _ in got] == [1, 2]
    finally:
        sub.close()


def test_what_a_lost_connection_left_unconfirmed_is_sent_again(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    sub = _subscriber(config)
    try:
        with Publisher(config) as publisher:
            for n in range(3000):
                publisher.publish(topic="t", msg={"n": n}, modname=broker.prefix)
                if n == 1500:
                    assert close_connections(f"notifier publisher pid {os.getpid()}") == 1
            publisher.flush()
        got = []
        deadline = time.monotonic() + 20
        # Copies sent again come too: take everything until the queue is quiet.
        while time.monotonic() < deadline:
            frames = sub.recv(0.5)
            if frames is None and len(got) >= 3000:
                break
            if frames is not None:
                got.append((*frames, None))
                sub.commit([sub.last_token()])
        by_id: dict[str, set[int]] = {}
        for _, payload, _ in got:
            envelope = json.loads(payload)
            by_id.setdefault(envelope["msg_id"], set()).add(envelope["msg"]["n"])
        # Every message arrived; a copy sent again carries the same id, for consumers to skip.
        assert sorted(n for ns in by_id.values() for n in ns) == list(range(3000))
        assert all(len(ns) == 1 for ns in by_id.values())
    finally:
        sub.close()


def test_a_lone_message_goes_out_before_any_flush(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    sub = _subscriber(config)
    try:
        with Publisher(config) as publisher:
            publisher.publish(topic="alone", msg={"n": 1}, modname=broker.prefix)
            # Nothing more is published, and nothing flushed, until it has arrived.
            got = _receive(sub, 1)
            sub.commit([t for _, _, t in got])
    finally:
        sub.close()


def test_one_ack_for_a_batch_leaves_what_was_not_handed_out(tmp_path, broker: Broker) -> None:
    config = broker.config(tmp_path)
    _subscriber(config).close()
    with Publisher(config) as publisher:
        for i in range(6):
            publisher.publish(topic="t", msg={"n": i}, modname=broker.prefix)
    sub = _subscriber(config)
    got = _receive(sub, 3)  # the broker has sent all six; three are handed out
    sub.commit([t for _, _, t in got])  # acked together, up to the third only
    sub.close()
    sub = _subscriber(config)
    rest = _receive(sub, 3)
    assert [json.loads(p)["msg"]["n"] for _, p, _ in rest] == [3, 4, 5]
    sub.commit([t for _, _, t in rest])
    assert sub.recv(0.5) is None
    sub.close()
    assert broker.depth(broker.queue) == 0
