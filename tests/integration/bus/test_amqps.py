"""``amqps://``: the AMQP transport over TLS, with the CA of ``[bus.amqp] ca_cert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from notifier.bus.publisher import Publisher
from notifier.bus.transports import open_subscriber
from notifier.config import Config, config_from_dict
from notifier.errors import PublishError
from tests.conftest import wait_for
from tests.integration.bus.conftest import Broker
from tests.integration.certs import server_tls
from tests.integration.tlsproxy import TlsFront

pytestmark = pytest.mark.integration


@pytest.fixture
def front(tmp_path: Path) -> Any:
    context, ca = server_tls(tmp_path, "Notifier Test Broker CA")
    with TlsFront(context, ("127.0.0.1", 5672)) as front:
        front.ca = ca
        yield front


def _config(tmp_path: Path, broker: Broker, url: str, **amqp: Any) -> Config:
    return config_from_dict({"bus": {"relay_inbound": url, "endpoints": [url],
                                     "embedded_relay": False, "publish_timeout": 5.0,
                                     "amqp": {**broker.amqp_section(), **amqp}}},
                            str(tmp_path / "notifier.toml"))


def test_publish_and_consume_over_tls(tmp_path: Path, broker: Broker, front: Any) -> None:
    url = f"amqps://guest:guest@127.0.0.1:{front.port}/%2F"
    config = _config(tmp_path, broker, url, ca_cert=str(front.ca))
    sub = open_subscriber(config.bus.endpoints, bus=config.bus, durable=True)
    try:
        with Publisher(config) as publisher:
            publisher.publish(topic="build", msg={"n": 1}, modname=broker.prefix)
        frames = wait_for(lambda: sub.recv(0.2), "the message, through TLS both ways")
        topic, body = frames
        assert topic.decode() == f"org.fedoraproject.dev.{broker.prefix}.build"
        assert json.loads(body)["msg"] == {"n": 1}
        sub.commit([sub.last_token()])
    finally:
        sub.close()
    assert front.handshakes >= 2  # the publisher's connection and the consumer's
    assert broker.depth(broker.queue) == 0


def test_a_broker_certificate_nobody_trusts_is_an_error(tmp_path: Path, broker: Broker,
                                                         front: Any) -> None:
    url = f"amqps://guest:secret@127.0.0.1:{front.port}/%2F"
    config = _config(tmp_path, broker, url)  # no ca_cert: the system's CAs, which don't know it
    with pytest.raises(PublishError, match=r"amqps://guest@127\.0\.0\.1:\d+/.*CERTIFICATE_VERIFY"
                       r"|amqps://guest@127\.0\.0\.1:\d+/.*certificate verify") as info:
        Publisher(config, timeout=2.0)
    assert "secret" not in str(info.value)
    assert front.handshakes == 0
