"""Packages, containers, modules and flatpaks in fedora-messaging's headers, on the RabbitMQ here.

* notifier publishes -> the ``fedora_messaging_rpm_``/``container_``/``module_``/``flatpak_``
  flags are on the wire, fedora-messaging's own parser reads and validates the message, and
  notifier's consumer describes it from the flags alone and matches rules on each kind;
* fedora-messaging publishes, with a schema class registered as schema packages do (an entry
  point on ``fedora.messages``) -> notifier's consumer reads each kind from the flags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from notifier.bus.publisher import Publisher
from notifier.bus.transports import open_subscriber
from notifier.config import config_from_dict
from notifier.meta import Describer
from notifier.rules import Matcher, parse_rule
from tests.conftest import wait_for
from tests.integration.bus.conftest import Broker
from tests.integration.bus.test_amqp_fedora_messaging import fm_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
KINDS = ("packages", "containers", "modules", "flatpaks")
OWNERS = [("kernel", "user", "alice"), ("containers/fedora-toolbox", "user", "bob"),
          ("modules/nodejs", "group", "js-sig"), ("flatpaks/org.gnome.Maps", "user", "carol")]
RULES = [parse_rule(d, destinations=["email"]) for d in (
    {"user": "alice", "name": "mine", "track": {"kind": "artifacts-owned"},
     "destinations": ["email"]},
    {"user": "bob", "name": "mine", "track": {"kind": "artifacts-owned"},
     "destinations": ["email"]},
    {"user": "dave", "name": "js", "track": {"kind": "artifacts-group-owned",
                                             "groups": ["js-sig"]}, "destinations": ["email"]},
    {"user": "erin", "name": "maps", "track": {"kind": "artifacts-followed",
                                               "packages": ["flatpak/org.gnome.Maps"]},
     "destinations": ["email"]},
)]


def _receive(sub: Any, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        frames = sub.recv(0.2)
        if frames is not None:
            got.append(json.loads(frames[1]))
            sub.commit([sub.last_token()])
    assert len(got) == n, f"received {len(got)} of {n} messages"
    return got


def _plain(tmp_path: Path) -> Describer:
    """A receiver with no schema class and no mapping: what it knows, the headers say."""
    return Describer(config_from_dict({"meta": {"use_fedmsg_meta": False,
                                                "use_fedora_messaging": False}},
                                      str(tmp_path / "plain.toml")))


def _second_queue(broker: Broker, key: str) -> str:
    """A queue of the test's own on ``key``, to see the messages as they are on the wire."""
    queue = f"{broker.prefix}.raw"
    broker.queues.append(queue)
    channel = broker.channel()
    try:
        channel.queue_declare(queue)
        channel.queue_bind(queue, "amq.topic", key)
    finally:
        channel.connection.close()
    return queue


def test_every_kind_goes_out_in_the_flags_and_comes_back_to_the_rules(tmp_path: Path,
                                                                      broker: Broker) -> None:
    topic = f"org.fedoraproject.dev.{broker.prefix}.compose"
    config = broker.config(tmp_path, meta={"use_fedmsg_meta": False, "mappings": [{
        "topic": topic, "app": "compose", "usernames_paths": ["by"],
        **{f"{kind}_paths": [kind] for kind in KINDS}}]})
    open_subscriber(config.bus.endpoints, bus=config.bus, durable=True).close()
    raw = _second_queue(broker, topic)
    messages = [
        {"by": "zed", "packages": ["kernel"]},
        {"by": "zed", "containers": ["fedora-toolbox"]},
        {"by": "zed", "modules": ["nodejs"]},
        {"by": "zed", "flatpaks": ["org.gnome.Maps"]},
        {"by": "zed", "packages": ["kernel"], "containers": ["fedora-toolbox", "base"],
         "modules": ["nodejs"], "flatpaks": ["org.gnome.Maps"]},
    ]
    with Publisher(config, describe=Describer(config).describe_for_headers) as publisher:
        for msg in messages:
            publisher.publish(topic="compose", msg=msg, modname=broker.prefix)

    # On the wire: fedora-messaging's flags, and its own parser takes the message.
    from fedora_messaging.message import get_message

    wire = wait_for(lambda: (lambda got: got if len(got) == 5 else None)(
        broker.get_all(raw)), "the five messages on the wire")
    flags = []
    for method, properties, body in wire:
        message = get_message(method.routing_key, properties, body)
        message.validate()
        flags.append(sorted(k for k, v in message._headers.items()
                            if v is True and k != "fedora_messaging_user_zed"))
    assert flags == [
        ["fedora_messaging_rpm_kernel"], ["fedora_messaging_container_fedora-toolbox"],
        ["fedora_messaging_module_nodejs"], ["fedora_messaging_flatpak_org.gnome.Maps"],
        ["fedora_messaging_container_base", "fedora_messaging_container_fedora-toolbox",
         "fedora_messaging_flatpak_org.gnome.Maps", "fedora_messaging_module_nodejs",
         "fedora_messaging_rpm_kernel"]]

    # Back through notifier's consumer, to a receiver that knows only the headers.
    sub = open_subscriber(config.bus.endpoints, bus=config.bus, durable=True)
    try:
        received = _receive(sub, 5)
    finally:
        sub.close()
    plain = _plain(tmp_path)
    described = [plain.describe(envelope) for envelope in received]
    assert [{kind: d[kind] for kind in KINDS} for d in described] == [
        {kind: msg.get(kind, []) for kind in KINDS} for msg in [
            *messages[:4], {**messages[4], "containers": ["base", "fedora-toolbox"]}]]
    assert all(d["usernames"] == ["zed"] for d in described)
    matcher = Matcher(RULES, OWNERS)
    recipients = [sorted(r.user for r in matcher.match(d)) for d in described]
    assert recipients == [["alice"], ["bob"], ["dave"], ["erin"],
                          ["alice", "bob", "dave", "erin"]]


PUBLISH = """
import sys
from fedora_messaging import api
from tests.unit.meta.distgit_schemas import GitHookCommit, git_hook_push

topic = sys.argv[1]
for namespace, repo in (("rpms", "kernel"), ("container", "fedora-toolbox"),
                        ("modules", "nodejs"), ("flatpaks", "org.gnome.Maps")):
    api.publish(GitHookCommit(topic=topic, body=git_hook_push(namespace, repo)["body"]))
"""


def test_fedora_messagings_own_classes_reach_notifier_with_every_kind(
        tmp_path: Path, broker: Broker) -> None:
    # Registered as a schema package registers its classes: an entry point, found on the path.
    dist = tmp_path / "site" / "distgit_test_schemas-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: distgit-test-schemas\n"
                                   "Version: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fedora.messages]\nfedora_messaging_git_hook.commit.v1 = "
        "tests.unit.meta.distgit_schemas:GitHookCommit\n")
    config = broker.config(tmp_path)
    sub = open_subscriber(config.bus.endpoints, bus=config.bus, durable=True)
    try:
        topic = f"org.fedoraproject.prod.{broker.prefix}.git.receive"
        env = {**os.environ, "FEDORA_MESSAGING_CONF": str(fm_config(tmp_path)),
               "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
        result = subprocess.run([sys.executable, "-c", PUBLISH, topic], capture_output=True,
                                text=True, timeout=120, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        received = _receive(sub, 4)
    finally:
        sub.close()
    headers = [envelope["headers"] for envelope in received]
    assert {h["fedora_messaging_schema"] for h in headers} == {
        "fedora_messaging_git_hook.commit.v1"}
    plain = _plain(tmp_path)
    described = [plain.describe(envelope) for envelope in received]
    assert [{kind: d[kind] for kind in KINDS if d[kind]} for d in described] == [
        {"packages": ["kernel"]}, {"containers": ["fedora-toolbox"]}, {"modules": ["nodejs"]},
        {"flatpaks": ["org.gnome.Maps"]}]
    assert [sorted(r.user for r in Matcher(RULES, OWNERS).match(d)) for d in described] == [
        ["alice"], ["bob"], ["dave"], ["erin"]]



def test_notifier_serve_delivers_on_an_owned_container(tmp_path: Path, broker: Broker) -> None:
    """fedora-messaging publish -> notifier serve: the owner of a container gets it in their
    feed; a package and a flatpak of other owners, one of them of the same name, do not."""
    from tests.integration.bus.test_amqp_fedora_messaging import Served, fm_publish

    served = Served(tmp_path, broker)
    try:
        owners = tmp_path / "owners.json"
        owners.write_text(json.dumps({"container": {"fedora-toolbox": ["alice"],
                                                    "toolbx-base": ["@desktop"]},
                                      "rpms": {"fedora-toolbox": ["bob"]},
                                      "flatpaks": {"org.gnome.Maps": ["bob"]}}))
        served.cli("owners", "import", str(owners))
        served.cli("rules", "remove", "alice", "ours")
        rules = tmp_path / "mine.json"
        rules.write_text(json.dumps([
            {"user": "alice", "name": "mine", "track": {"kind": "artifacts-owned"},
             "destinations": ["rss"]},
            {"user": "alice", "name": "desktop", "track": {"kind": "artifacts-group-owned",
                                                           "groups": ["desktop"]},
             "destinations": ["rss"]}]))
        served.cli("rules", "import", str(rules))
        served.serve.start()
        topic = f"org.fedoraproject.prod.{broker.prefix}.git.receive"
        sent = []
        for flag, name in (("container", "fedora-toolbox"), ("rpm", "fedora-toolbox"),
                           ("flatpak", "org.gnome.Maps"), ("container", "toolbx-base")):
            msg_id = f"{broker.prefix}-{flag}-{name}"
            fm_publish(tmp_path, {
                "topic": topic, "id": msg_id, "body": {"summary": f"push to {flag} {name}"},
                "headers": {"fedora_messaging_schema": "base.message",
                            f"fedora_messaging_{flag}_{name}": True}})
            sent.append(msg_id)
        for msg_id in sent:
            wait_for(lambda m=msg_id: served.stored(m), f"serve to store {msg_id}",
                     timeout=30, context=served.serve.log)
        wait_for(lambda: len(served.feed_titles()) == 2, "the two feed entries", timeout=30,
                 context=served.serve.log)
        assert served.feed_titles() == [f"[{broker.prefix}] push to container fedora-toolbox",
                                        f"[{broker.prefix}] push to container toolbx-base"]
    finally:
        served.close()
