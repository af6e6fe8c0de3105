"""The multi-machine example in conf/site/ holds together.

Every TOML file is read by notifier's own loader; the three roles agree on
the database, the bus and the queue; the systemd units pass
``systemd-analyze verify`` (pointed at this environment's ``notifier``,
since verify insists that the program exists); and the RabbitMQ definitions,
imported into a virtual host of the test's own, give a queue that ``notifier
serve`` accepts as it is (its arguments match what serve declares) and that
routes and dead-letters as the configuration says.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from notifier.config import Config, load_config
from tests.conftest import ROOT, require_service

pytestmark = pytest.mark.integration

SITE = ROOT / "conf" / "site"
ROLES = ("ingest", "deliver", "http")
#: where the units expect notifier to be installed
INSTALLED = "/opt/notifier/bin/notifier"
NOTIFIER = Path(sys.executable).parent / "notifier"


def site_config(role: str) -> Config:
    return load_config(SITE / f"{role}.toml", environ={})


def definitions() -> dict:
    return json.loads((SITE / "rabbitmq" / "definitions.json").read_text())


def test_every_toml_file_of_the_example_is_valid() -> None:
    files = sorted(SITE.rglob("*.toml"))
    assert [f.stem for f in files] == sorted(ROLES)
    for file in files:
        config = load_config(file, environ={})
        assert config.sources == (str(file),)


def test_the_roles_share_the_database_the_bus_and_the_queue() -> None:
    configs = {role: site_config(role) for role in ROLES}
    first = configs["ingest"]
    assert first.database_url and first.database_url.startswith("postgresql+psycopg://")
    for role, config in configs.items():
        assert config.database_url == first.database_url, role
        assert config.bus.endpoints == first.bus.endpoints, role
        assert config.bus.relay_inbound == first.bus.relay_inbound, role
        assert config.bus.endpoints[0].startswith("amqps://"), role
        # Several processes share the outbox: none may take back another's claims.
        assert config.bus.embedded_relay is False, role
        for key in ("queue", "dead_letter_exchange", "dead_letter_queue", "bindings"):
            assert getattr(config.bus.amqp, key) == getattr(first.bus.amqp, key), (role, key)
    # A destination the ingest knows no backend for would be recorded dead.
    assert configs["ingest"].email == configs["deliver"].email
    assert configs["ingest"].irc == configs["deliver"].irc
    listens = [config.http.listen for config in configs.values()]
    assert len(set(listens)) == len(listens)  # the roles can share a machine


def test_the_rabbitmq_definitions_are_what_the_configuration_names() -> None:
    amqp = site_config("ingest").bus.amqp
    defs = definitions()
    queues = {q["name"]: q for q in defs["queues"]}
    assert set(queues) == {amqp.queue, amqp.dead_letter_queue}
    assert queues[amqp.queue]["arguments"] == {
        "x-dead-letter-exchange": amqp.dead_letter_exchange}
    assert all(q["durable"] and not q["auto_delete"] for q in queues.values())
    exchanges = {e["name"]: e for e in defs["exchanges"]}
    assert exchanges[amqp.dead_letter_exchange]["type"] == "fanout"
    bound = {(b["source"], b["routing_key"]) for b in defs["bindings"]
             if b["destination"] == amqp.queue}
    assert bound == {(b.exchange, key) for b in amqp.bindings for key in b.routing_keys}
    assert {(b["source"], b["destination"]) for b in defs["bindings"]
            if b["destination"] == amqp.dead_letter_queue} == {
        (amqp.dead_letter_exchange, amqp.dead_letter_queue)}
    vhost = site_config("ingest").bus.endpoints[0].rsplit("/", 1)[1].replace("%2F", "/")
    assert {v["name"] for v in defs["vhosts"]} == {vhost}


def units() -> list[Path]:
    return sorted((SITE / "systemd").glob("*.service")) + sorted(
        (SITE / "systemd").glob("*.target"))


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: dev/setup installs Debian's systemd")
    assert NOTIFIER.is_file()
    names = []
    for unit in units():
        text = unit.read_text()
        if unit.suffix == ".service":
            role = unit.name.removeprefix("notifier-").partition("@")[0]
            assert role in ROLES, unit.name
            assert f"ExecStart={INSTALLED} serve --role {role} " in text, unit.name
            assert "--config /etc/notifier/%i.toml" in text, unit.name
            assert "WantedBy=notifier.target" in text, unit.name
            # The instance named after the role reads that role's example file.
            names.append(unit.name.replace("@.", f"@{role}."))
        else:
            names.append(unit.name)
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(NOTIFIER)))
    assert len(names) == len(ROLES) + 1
    result = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "notifier" not in result.stderr, result.stderr  # no warning about our units


def test_systemd_analyze_verify_fails_a_unit_whose_program_is_missing(tmp_path: Path) -> None:
    # What the test above relies on: verify looks at ExecStart's program.
    unit = SITE / "systemd" / "notifier-ingest@.service"
    (tmp_path / unit.name).write_text(unit.read_text())
    result = subprocess.run(["systemd-analyze", "verify", "notifier-ingest@ingest.service"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert INSTALLED in result.stderr


def rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["rabbitmqctl", "-q", *args], input=stdin, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_definitions_give_a_queue_serve_accepts_and_that_routes() -> None:
    require_service("RabbitMQ", 5672)
    from notifier.bus.amqp_transport import AmqpPublisher, AmqpSubscriber

    vhost = f"/site-{uuid.uuid4().hex[:10]}"
    text = json.dumps(definitions()).replace('"/pubsub"', json.dumps(vhost))
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        rabbitmqctl("import_definitions", "--format", "json", stdin=text)
        queues = rabbitmqctl("list_queues", "-p", vhost, "name", "arguments")
        assert "notifier.dead" in queues and "x-dead-letter-exchange" in queues, queues
        config = site_config("ingest")
        # The example's broker and TLS, swapped for the one here.
        settings = dataclasses.replace(config.bus.amqp, ca_cert=None, reconnect_base=0.1,
                                       reconnect_cap=1.0)
        url = f"amqp://guest:guest@127.0.0.1:5672/{vhost.replace('/', '%2F')}"
        # Declaring again what the definitions made must not clash (same arguments).
        subscriber = AmqpSubscriber([url], [""], settings, durable=True)
        try:
            with AmqpPublisher(url, settings, 5.0) as publisher:
                for n in range(2):
                    envelope = json.dumps({"topic": "org.fedoraproject.prod.site.test",
                                           "msg": {"n": n}, "msg_id": f"site-{n}"}).encode()
                    publisher.send(b"org.fedoraproject.prod.site.test", envelope)
            got = []
            deadline = time.monotonic() + 15
            while len(got) < 2 and time.monotonic() < deadline:
                frames = subscriber.recv(0.5)
                if frames is not None:
                    got.append((json.loads(frames[1])["msg"]["n"], subscriber.last_token()))
            assert sorted(n for n, _ in got) == [0, 1]
            subscriber.commit([token for n, token in got if n == 0])
            subscriber.reject([token for n, token in got if n == 1])
        finally:
            subscriber.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            listed = rabbitmqctl("list_queues", "--no-table-headers", "-p", vhost, "name",
                                 "messages")
            depths = dict(line.split("\t")[:2] for line in listed.splitlines() if "\t" in line)
            if depths == {"notifier": "0", "notifier.dead": "1"}:
                break
            time.sleep(0.2)
        assert depths == {"notifier": "0", "notifier.dead": "1"}
    finally:
        rabbitmqctl("delete_vhost", vhost)
