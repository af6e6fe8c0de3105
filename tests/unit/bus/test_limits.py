"""Bounds at the sockets: finite queues, frames over the limit cut off, and no silent drop."""

from __future__ import annotations

import time

import pytest
import zmq

from notifier.bus.publisher import Publisher
from notifier.bus.relay import Relay
from notifier.bus.transports import open_subscriber
from notifier.config import Config, config_from_dict
from notifier.errors import PublishError
from tests.conftest import free_port


def test_defaults_are_finite() -> None:
    config = Config()
    assert 0 < config.bus.high_water_mark <= 100_000
    assert config.bus.frame_limit(config.max_message_bytes) >= config.max_message_bytes + 65536
    assert config.bus.frame_limit(10 * config.bus.max_frame_bytes) > \
        10 * config.bus.max_frame_bytes
    assert config.history.keep_rejected == 10000


class Sender:
    """A raw XPUB peer connected to ``address``, which waits for the subscription first."""

    def __init__(self, address: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)
        assert self.sock.poll(5000, zmq.POLLIN)
        self.sock.recv()

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def test_the_relay_cuts_off_a_peer_sending_a_frame_over_the_limit() -> None:
    inbound, outbound = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    relay = Relay(inbound, outbound, high_water_mark=100, max_message_size=4096)
    thread = relay.start_thread()
    sub = open_subscriber([outbound])
    big, small = Sender(inbound), Sender(inbound)
    try:
        deadline = time.monotonic() + 5
        while sub.recv(0.05) is None:  # until the subscriber is connected to the relay
            small.sock.send_multipart([b"probe", b"{}"])
            assert time.monotonic() < deadline
        while sub.recv(0.1) is not None:
            pass
        big.sock.send_multipart([b"big", b"x" * 5000])
        for n in range(20):
            small.sock.send_multipart([b"small", b"%d" % n])
        got = []
        while (frames := sub.recv(1)) is not None:
            got.append(frames)
        assert [f for f in got if f[0] == b"big"] == []
        assert [f[1] for f in got] == [b"%d" % n for n in range(20)]
    finally:
        big.close()
        small.close()
        sub.close()
        relay.stop()
        thread.join(5)


def test_the_subscriber_never_takes_in_a_frame_over_its_limit() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(address)
    sub = open_subscriber([address], max_message_size=4096)
    try:
        deadline = time.monotonic() + 5
        while sub.recv(0.05) is None:
            pub.send_multipart([b"probe", b"{}"])
            assert time.monotonic() < deadline
        pub.send_multipart([b"big", b"x" * 5000])
        received = []
        deadline = time.monotonic() + 5
        while not received or received[-1][0] != b"after":  # it reconnects, then goes on
            pub.send_multipart([b"after", b"{}"])
            if (frames := sub.recv(0.05)) is not None:
                received.append(frames)
            assert time.monotonic() < deadline
        assert all(frames[0] != b"big" for frames in received)
    finally:
        sub.close()
        pub.close()
        ctx.term()


@pytest.mark.parametrize("high_water_mark", [4])
def test_a_full_queue_makes_the_publisher_fail_loudly_never_drop(high_water_mark: int) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    config = config_from_dict({"bus": {"publish_endpoint": address, "publish_timeout": 0.5,
                                       "high_water_mark": high_water_mark}})
    publisher = Publisher(config)
    sub = open_subscriber([address], high_water_mark=high_water_mark)
    body = {"blob": "x" * 200_000}
    sent = 0
    try:
        publisher.publish("warmup", {}, modname="t")
        assert sub.recv(5) is not None
        with pytest.raises(PublishError, match="send queue stayed full"):
            for _ in range(10_000):  # the subscriber reads nothing meanwhile
                publisher.publish("load", body, modname="t")
                sent += 1
        assert 0 < sent < 10_000
        received = 0
        while sub.recv(1) is not None:
            received += 1
        assert received == sent  # every publish that returned was delivered
    finally:
        sub.close()
        publisher.close()
