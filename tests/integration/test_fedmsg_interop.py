"""Interoperation with real fedmsg 1.1.7, both ways, plain and signed.

fedmsg's tools read ``./fedmsg.d/*.py`` in their working directory, so each
test writes one into its ``tmp_path`` next to our own TOML config.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from notifier.bus.envelope import EnvelopeBuilder, canonical_json
from notifier.bus.signing import Signer
from notifier.bus.transports import open_publisher
from notifier.config import Config
from tests.conftest import free_port, run
from tests.integration.certs import Pki
from tests.integration.conftest import Proc, wait_for_connection

pytestmark = pytest.mark.integration

#: fedmsg-logger signs with certnames["shell.<short hostname>"]
HOST = socket.gethostname().split(".", 1)[0]
MSG_ID = re.compile(r"^\d{4}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def write_fedmsg_config(workdir: Path, *, endpoints: dict[str, list[str]],
                        relay_inbound: str, **extra: Any) -> None:
    """A loopback fedmsg config in ``workdir/fedmsg.d``, unsigned unless ``extra`` says so."""
    config: dict[str, Any] = dict(
        topic_prefix="org.fedoraproject", environment="dev", endpoints=endpoints,
        relay_inbound=relay_inbound, zmq_enabled=True, sign_messages=False,
        validate_signatures=False, post_init_sleep=0.5, zmq_linger=1000, high_water_mark=0,
        io_threads=1)
    config.update(extra)
    (workdir / "fedmsg.d").mkdir(exist_ok=True)
    (workdir / "fedmsg.d" / "loopback.py").write_text(f"config = {config!r}\n")


def fedmsg_crypto(pki: Pki, certname: str = "signer") -> dict[str, Any]:
    """fedmsg settings that sign with ``pki.directory/<certname>.crt`` and validate on our CA."""
    return dict(sign_messages=True, validate_signatures=True, crypto_backend="x509",
                crypto_validate_backends=["x509"], ssldir=str(pki.directory),
                certnames={f"shell.{HOST}": certname}, ca_cert_location=str(pki.ca_cert),
                crl_location=str(pki.crl), routing_policy={}, routing_nitpicky=False)


def write_notifier_config(path: Path, *, relay_inbound: str, endpoints: list[str],
                          pki: Pki | None = None, sign: bool = False) -> Path:
    lines = ["[bus]", f'relay_inbound = "{relay_inbound}"',
             f"endpoints = {json.dumps(endpoints)}", ""]
    if pki is not None:
        lines[:0] = [f"sign_messages = {'true' if sign else 'false'}", ""]
        lines += ["[crypto]", f'certificate = "{pki.signer_cert}"',
                  f'private_key = "{pki.signer_key}"', f'ca_cert = "{pki.ca_cert}"',
                  f'crl = "{pki.crl}"', ""]
    path.write_text("\n".join(lines))
    return path


def relay_configs(tmp_path: Path, bus_config: Config, pki: Pki | None = None,
                  sign: bool = False) -> Path:
    """Both configs pointing at the in-process relay; returns our TOML's path."""
    bus = bus_config.bus
    extra = fedmsg_crypto(pki) if pki is not None and sign else {}
    write_fedmsg_config(tmp_path, endpoints={"relay_outbound": [bus.endpoints[0]]},
                        relay_inbound=bus.relay_inbound, **extra)
    return write_notifier_config(tmp_path / "notifier.toml", relay_inbound=bus.relay_inbound,
                                 endpoints=list(bus.endpoints), pki=pki, sign=sign)


def fedmsg_tail_message(line: str) -> dict[str, Any]:
    """The message dict fedmsg-tail logs as ``[time][fedmsg.commands INFO] {...}``."""
    return ast.literal_eval(line.split("INFO] ", 1)[1])


def logged_by_fedmsg_tail(marker: str) -> Any:
    return lambda line: "[fedmsg.commands" in line and marker in line


def publish_until_seen(proc: Proc, marker: str, publish: Any, attempts: int = 3) -> str:
    """Run ``publish()`` until fedmsg-tail ``proc`` logs a message containing ``marker``."""
    for _ in range(attempts):
        publish()
        line = proc.stdout.wait_for(logged_by_fedmsg_tail(marker), timeout=5)
        if line is not None:
            return line
    raise AssertionError(f"fedmsg-tail never showed {marker!r}: {proc.describe()}")


def test_fedmsg_logger_through_our_relay_to_notifier_tail(tmp_path, bus_config, relay, spawn):
    config = relay_configs(tmp_path, bus_config)
    tail = spawn("notifier-tail", "--config", str(config), "--json", "--count", "1",
                 "--timeout", "20", cwd=tmp_path)
    wait_for_connection(port_of(bus_config.bus.endpoints[0]), tail)

    logger = run("fedmsg-logger", "--message", "Hello from fedmsg, caf\u00e9", "--modname", "git",
                 "--topic", "repo.update", cwd=tmp_path, timeout=30)
    assert logger.returncode == 0, logger.stderr

    assert tail.wait(25) == 0, tail.describe()
    envelope = json.loads(tail.stdout.lines[-1])
    assert envelope["topic"] == "org.fedoraproject.dev.git.repo.update"
    assert envelope["msg"] == {"log": "Hello from fedmsg, caf\u00e9"}
    assert envelope["i"] == 1
    assert MSG_ID.match(envelope["msg_id"])
    assert isinstance(envelope["timestamp"], int)
    assert "signature" not in envelope


def test_notifier_logger_through_our_relay_to_fedmsg_tail(tmp_path, bus_config, relay, spawn):
    config = relay_configs(tmp_path, bus_config)
    tail = spawn("fedmsg-tail", cwd=tmp_path)
    wait_for_connection(port_of(bus_config.bus.endpoints[0]), tail)
    body = {"text": "plain from notifier", "n": [1, 2.5, None], "nested": {"caf\u00e9": True}}

    def publish() -> None:
        result = run("notifier-logger", "--config", str(config), "--json-input",
                     "--message", json.dumps(body), "--modname", "interop",
                     "--topic", "ours.plain", cwd=tmp_path, timeout=30)
        assert result.returncode == 0, result.stderr

    message = fedmsg_tail_message(publish_until_seen(tail, "ours.plain", publish))
    assert message["topic"] == "org.fedoraproject.dev.interop.ours.plain"
    assert message["msg"] == body
    assert MSG_ID.match(message["msg_id"])
    assert isinstance(message["i"], int) and isinstance(message["timestamp"], int)


PASSIVE_PUBLISHER = """\
import time
import fedmsg

fedmsg.init(name="interop.vm", active=False)
# A passive publisher cannot tell when a subscriber has joined: send until stopped.
for n in range(400):
    fedmsg.publish(topic="passive.test", modname="interop",
                   msg={"n": n, "text": "bound by fedmsg"})
    time.sleep(0.05)  # pacing itself: the scenario, not a wait
"""


def test_fedmsg_passive_publisher_to_notifier_tail(tmp_path, spawn):
    address = f"tcp://127.0.0.1:{free_port()}"
    write_fedmsg_config(tmp_path, endpoints={"interop.vm": [address]},
                        relay_inbound=f"tcp://127.0.0.1:{free_port()}")
    config = write_notifier_config(tmp_path / "notifier.toml",
                                   relay_inbound=f"tcp://127.0.0.1:{free_port()}",
                                   endpoints=[address])
    (tmp_path / "passive.py").write_text(PASSIVE_PUBLISHER)
    publisher = spawn(sys.executable, str(tmp_path / "passive.py"), cwd=tmp_path)
    tail = spawn("notifier-tail", "--config", str(config), "--json", "--count", "1",
                 "--timeout", "20", cwd=tmp_path)

    assert tail.wait(25) == 0, tail.describe() + "\n" + publisher.describe()
    envelope = json.loads(tail.stdout.lines[-1])
    assert envelope["topic"] == "org.fedoraproject.dev.interop.passive.test"
    assert envelope["msg"]["text"] == "bound by fedmsg"
    assert envelope["i"] == envelope["msg"]["n"] + 1
    assert publisher.popen.poll() is None, publisher.describe()  # still sending, not crashed


def test_signed_notifier_logger_accepted_by_fedmsg_tail_validate(tmp_path, bus_config, relay,
                                                                 spawn, pki):
    config = relay_configs(tmp_path, bus_config, pki, sign=True)
    tail = spawn("fedmsg-tail", "--validate", cwd=tmp_path)
    wait_for_connection(port_of(bus_config.bus.endpoints[0]), tail)

    # First a message changed after signing: fedmsg-tail must reject it, which
    # shows that it really validates what it accepts below.
    signer = Signer(str(pki.signer_cert), str(pki.signer_key))
    tampered = signer.sign(EnvelopeBuilder("org.fedoraproject", "dev").build(
        "interop", "ours.tampered", {"text": "original"}))
    tampered["msg"] = {"text": "changed"}
    with open_publisher(bus_config.bus.relay_inbound, timeout=10) as pub:
        pub.send(tampered["topic"].encode(), canonical_json(tampered).encode())

    body = {"text": "signed by notifier \u2713", "n": 7}

    def publish() -> None:
        result = run("notifier-logger", "--config", str(config), "--json-input",
                     "--message", json.dumps(body), "--modname", "interop",
                     "--topic", "ours.signed", cwd=tmp_path, timeout=30)
        assert result.returncode == 0, result.stderr

    message = fedmsg_tail_message(publish_until_seen(tail, "ours.signed", publish))
    assert message["msg"] == body
    assert message["crypto"] == "x509"
    assert message["signature"].endswith("\n") and message["certificate"].endswith("\n")
    assert tail.stderr.wait_for(lambda line: "invalid message received" in line
                                and "ours.tampered" in line, timeout=10), tail.describe()
    assert tail.stdout.wait_for(logged_by_fedmsg_tail("ours.tampered"), timeout=0) is None
    assert "ours.signed" not in tail.stderr.text


def test_signed_fedmsg_logger_accepted_by_notifier_tail_validate(tmp_path, bus_config, relay,
                                                                 spawn, pki):
    config = relay_configs(tmp_path, bus_config, pki, sign=True)
    tail = spawn("notifier-tail", "--config", str(config), "--validate", "--json",
                 "--count", "1", "--timeout", "20", cwd=tmp_path)
    wait_for_connection(port_of(bus_config.bus.endpoints[0]), tail)

    logger = run("fedmsg-logger", "--message", "signed by fedmsg", "--topic", "signed",
                 cwd=tmp_path, timeout=30)
    assert logger.returncode == 0, logger.stderr

    assert tail.wait(25) == 0, tail.describe()
    envelope = json.loads(tail.stdout.lines[-1])
    assert envelope["topic"] == "org.fedoraproject.dev.logger.signed"
    assert envelope["msg"] == {"log": "signed by fedmsg"}
    assert envelope["crypto"] == "x509" and envelope["signature"]
    assert "dropped" not in tail.stderr.text


def test_notifier_tail_validate_drops_bad_signatures(tmp_path, spawn, pki):
    address = f"tcp://127.0.0.1:{free_port()}"
    config = write_notifier_config(tmp_path / "notifier.toml",
                                   relay_inbound=f"tcp://127.0.0.1:{free_port()}",
                                   endpoints=[address], pki=pki)
    builder = EnvelopeBuilder("org.fedoraproject", "dev")
    good = Signer(str(pki.signer_cert), str(pki.signer_key))

    def envelope(topic: str) -> dict[str, Any]:
        return builder.build("interop", topic, {"text": topic})

    tampered = good.sign(envelope("bad.tampered"))
    tampered["msg"] = {"text": "changed in transit"}
    added = good.sign(envelope("bad.added"))
    added["seq_id"] = 1
    bad = [
        ("bad.rogue", Signer(str(pki.rogue_cert), str(pki.rogue_key)).sign(envelope("bad.rogue")),
         "is not issued by a CA in"),
        ("bad.revoked",
         Signer(str(pki.revoked_cert), str(pki.revoked_key)).sign(envelope("bad.revoked")),
         "was revoked"),
        ("bad.tampered", tampered, "signature does not match"),
        ("bad.added", added, "signature does not match"),
        ("bad.unsigned", envelope("bad.unsigned"), "not signed"),
    ]
    last = good.sign(envelope("good"))

    # Bound publisher: send() waits until notifier-tail has subscribed.
    with open_publisher(address, bind=True, timeout=20) as pub:
        tail = spawn("notifier-tail", "--config", str(config), "--validate", "--json",
                     "--count", "1", "--timeout", "20", cwd=tmp_path)
        for _, env, _ in bad:
            pub.send(env["topic"].encode(), canonical_json(env).encode())
        pub.send(last["topic"].encode(), canonical_json(last).encode())
        assert tail.wait(25) == 0, tail.describe()

    assert [json.loads(line)["topic"] for line in tail.stdout.lines] == [last["topic"]]
    dropped = [line for line in tail.stderr.lines if "dropped" in line]
    assert len(dropped) == len(bad), tail.describe()
    for (topic, env, reason), line in zip(bad, dropped, strict=True):
        assert env["msg_id"] in line and topic in line and reason in line, line
