"""Transports: address schemes, and the ZeroMQ publisher's subscription handshake."""

from __future__ import annotations

import threading
import time

import pytest

from notifier.bus.publisher import Publisher
from notifier.bus.transports import TRANSPORTS, open_publisher, open_subscriber, transport_for
from notifier.config import Config
from notifier.errors import NoRelayError, TransportError
from tests.conftest import free_port


def test_unknown_scheme_names_the_address() -> None:
    with pytest.raises(TransportError, match=r"'amqpx://h'.*no transport for scheme 'amqpx'"):
        transport_for("amqpx://h")
    with pytest.raises(TransportError, match="is not an address"):
        transport_for("127.0.0.1:9940")


def test_registry_is_one_table() -> None:
    assert set(TRANSPORTS) >= {"tcp", "ipc"}


def test_publisher_without_relay_fails_naming_the_address() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    pub = open_publisher(address, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(NoRelayError, match=address.replace(".", r"\.")):
        pub.send(b"t", b"{}")
    assert time.monotonic() - started < 2
    pub.close()


def test_bind_mode_waits_for_a_subscriber_then_delivers() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    pub = open_publisher(address, bind=True, timeout=5)
    sub = open_subscriber([address], ["org."])
    try:
        pub.send(b"org.x", b'{"n":1}')  # blocks until the SUB's subscription arrives
        assert sub.recv(5) == (b"org.x", b'{"n":1}')
    finally:
        sub.close()
        pub.close()


def test_subscription_prefix_is_respected() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    pub = open_publisher(address, bind=True, timeout=0.5)
    sub = open_subscriber([address], ["org.a"])
    try:
        pub.send(b"org.a.1", b"{}")
        # Nobody wants org.b: that is an error, not a silent drop.
        with pytest.raises(NoRelayError):
            pub.send(b"org.b.1", b"{}")
    finally:
        sub.close()
        pub.close()


def test_publish_from_many_threads_loses_nothing(bus_config: Config, relay: None) -> None:
    sub = open_subscriber(bus_config.bus.endpoints)
    publisher = Publisher(bus_config)
    # Make sure the subscriber is connected to the relay before counting.
    deadline = time.monotonic() + 5
    while True:
        publisher.publish("warmup", {}, modname="t")
        if sub.recv(0.1) is not None:
            break
        assert time.monotonic() < deadline, "subscriber never connected"
    while sub.recv(0.2) is not None:
        pass
    per_thread, threads = 2000, 4

    def work(n: int) -> None:
        for i in range(per_thread):
            publisher.publish("count", {"thread": n, "i": i}, modname="t")

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    got = set()
    while (frames := sub.recv(2)) is not None:
        import json

        env = json.loads(frames[1])
        got.add((env["msg"]["thread"], env["msg"]["i"]))
    publisher.close()
    sub.close()
    assert len(got) == per_thread * threads


def test_publish_endpoint_binds_like_fedmsgs_passive_mode() -> None:
    import json

    from notifier.config import config_from_dict

    address = f"tcp://127.0.0.1:{free_port()}"
    config = config_from_dict({"bus": {"publish_endpoint": address, "publish_timeout": 5.0}})
    publisher = Publisher(config)
    sub = open_subscriber([address])
    try:
        publisher.publish("passive", {"n": 1}, modname="t")
        frames = sub.recv(5)
        assert frames is not None
        assert frames[0] == b"org.fedoraproject.dev.t.passive"
        assert json.loads(frames[1])["msg"] == {"n": 1}
    finally:
        sub.close()
        publisher.close()
