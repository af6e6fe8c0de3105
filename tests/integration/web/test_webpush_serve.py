"""Web Push end to end: a browser subscribes through the API of a running ``notifier serve``,
a message published on the bus reaches the push service, which decrypts it.

The browsers' real push services cannot be reached from here, so the test runs
one on loopback (:mod:`tests.integration.pushservice`): it checks the VAPID
header against the key the API served, the TTL and the Urgency, and decrypts
each push with the subscription's own private key and auth secret (RFC 8291).
This is the sending half of the Web Push test; the service worker's half needs
the pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.storage import Store
from notifier.storage.credentials import Credentials
from notifier.storage.outbox import Outbox
from notifier.storage.push import PushSubscriptions
from tests.conftest import free_port, wait_for
from tests.integration.pushservice import PushService
from tests.integration.rawbus import RawPublisher
from tests.integration.serveproc import ServeProcess, write_toml

pytestmark = pytest.mark.integration

API = "/api/v1"
CONTACT = "mailto:push-admin@example.org"
#: how the site describes its CI's messages: a summary, a link, and severity error
MAPPING = """
[[meta.mappings]]
topic = "*.ci.build.*"
app = "ci"
summary = "{build.nvr} failed to build"
link_path = "build.url"
severity = "error"
"""


def rule(user: str, name: str, pattern: str, destination: str) -> dict[str, Any]:
    return {"user": user, "name": name, "track": {"kind": "topics", "patterns": [pattern]},
            "destinations": [destination]}


@dataclass
class Served:
    serve: ServeProcess
    store: Store
    publisher: RawPublisher
    push: PushService
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=f"http://{self.serve.http}{API}", timeout=10,
                            headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def publish(self, topic: str, body: dict[str, Any]) -> str:
        frames = self.publisher.builder.encode("ci", topic, body)
        self.publisher.send(*frames)
        return str(json.loads(frames[1])["msg_id"])


def serve(tmp_path: Path, push: PushService, **webpush: Any) -> Iterator[Served]:
    http = f"127.0.0.1:{free_port()}"
    inbound = f"tcp://127.0.0.1:{free_port()}"
    url = f"sqlite:///{tmp_path / 'notifier.db'}"
    config = write_toml(tmp_path / "notifier.toml", {
        "database_url": url,
        "bus": {"relay_inbound": inbound, "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": http}, "email": {"maildir": str(tmp_path / "Maildir")},
        "delivery": {"retry_base": 0.2, "retry_max": 0.5},
        "webpush": {"contact": CONTACT, "ttl": "3h", **webpush}})
    config.write_text(config.read_text() + MAPPING)
    store = Store(url)
    store.import_users([{"name": n, "emails": [f"{n}@example.org"]}
                        for n in ("alice", "bob", "carol")])
    store.upsert_rules([rule("alice", "ci", "*.ci.build.*", "webpush"),
                        rule("carol", "ci", "*.ci.build.*", "webpush"),
                        rule("bob", "probe", "*.probe.*", "rss")])
    credentials = Credentials(store)
    tokens = {}
    for user in ("alice", "bob", "carol"):
        tokens[user] = credentials.create_token(user, "tests", "write")[0]
        tokens[f"{user}:read"] = credentials.create_token(user, "reading", "read")[0]
    proc = ServeProcess(config, http, tmp_path / "serve.log").start()
    publisher = RawPublisher(inbound)
    served = Served(proc, store, publisher, push, tokens)
    try:
        yield served
    finally:
        publisher.close()
        proc.ensure_stopped()
        store.close()


@pytest.fixture
def push() -> Iterator[PushService]:
    service = PushService().start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def served(tmp_path: Path, push: PushService) -> Iterator[Served]:
    yield from serve(tmp_path, push, allow_private_endpoints=True)


def outbox_states(served: Served, user: str) -> list[str]:
    return [row.state for row in Outbox(served.store).rows(user=user)
            if row.destination == "webpush"]


def test_a_published_message_reaches_the_push_service_encrypted(served: Served) -> None:
    push = served.push
    alice, carol = served.client("alice"), served.client("carol")
    key = alice.get("/push/key").json()
    assert key["enabled"] is True
    # alice has two browsers; one of them has unsubscribed meanwhile (410).
    browser, gone = push.browser("alice"), push.browser("alice", answers=[410])
    # carol's push service is busy at first (503): the notification is tried again.
    busy = push.browser("carol", answers=[503])
    for client, b in ((alice, browser), (alice, gone), (carol, busy)):
        answer = client.post("/push/subscriptions", json={**push.subscription(b),
                                                          "label": "Firefox on Linux"})
        assert answer.status_code == 201, answer.text
    listed = alice.get("/push/subscriptions").json()
    assert [s["endpoint"] for s in listed] == [push.endpoint(browser), push.endpoint(gone)]
    assert listed[0]["user_agent"] == "Firefox on Linux" and "auth" not in listed[0]

    link = "https://ci.example.org/builds/4711"
    body = {"build": {"nvr": "python-requests-2.32.3-1.fc41", "url": link}}

    def arrived() -> bool:  # ZeroMQ subscriptions take a moment: publish until one lands
        if push.taken("alice"):
            return True
        served.publish("ci.build.failed", body)
        return False

    wait_for(arrived, "a push to alice's browser", timeout=20, context=served.serve.log,
             interval=0.5)
    assert not push.problems, push.problems
    first = push.taken("alice")[0]
    assert first.path == browser.path
    assert first.key == key["key"]  # signed with the key the API serves
    assert first.claims["aud"] == push.origin and first.claims["sub"] == CONTACT
    assert first.ttl == 3 * 3600
    assert first.urgency == "high"  # severity error
    assert first.payload["title"] == "ci: python-requests-2.32.3-1.fc41 failed to build"
    assert first.payload["link"] == link
    # The browser that answered 410 is gone; alice's notification was still delivered.
    wait_for(lambda: [s["endpoint"] for s in alice.get("/push/subscriptions").json()]
             == [push.endpoint(browser)], "the gone subscription to be removed",
             context=served.serve.log)
    wait_for(lambda: outbox_states(served, "alice") and set(outbox_states(served, "alice"))
             == {"sent"}, "alice's notifications sent", context=served.serve.log)
    # carol's: 503 first, then taken on a later attempt.
    wait_for(lambda: push.taken("carol"), "carol's push, after a retry", timeout=20,
             context=served.serve.log)
    tried = [p.status for p in push.pushes if p.user == "carol"]
    assert tried[:2] == [503, 201]
    assert push.taken("carol")[0].payload["link"] == link
    assert not push.problems, push.problems


def test_subscriptions_belong_to_their_user(served: Served) -> None:
    push = served.push
    alice, bob = served.client("alice"), served.client("bob")
    sub = alice.post("/push/subscriptions", json=push.subscription(push.browser("alice")))
    assert sub.status_code == 201, sub.text
    sub_id = sub.json()["id"]
    assert bob.get("/push/subscriptions").json() == []
    assert bob.delete(f"/push/subscriptions/{sub_id}").status_code == 404
    assert served.client("alice:read").delete(
        f"/push/subscriptions/{sub_id}").status_code == 403
    assert served.client("alice:read").get("/push/subscriptions").status_code == 200
    # The same endpoint again renews the subscription, it does not add one.
    again = alice.post("/push/subscriptions", json=push.subscription(push.browsers[
        "/push/1"]))
    assert again.json()["id"] == sub_id
    assert alice.delete(f"/push/subscriptions/{sub_id}").status_code == 204
    assert alice.get("/push/subscriptions").json() == []
    assert alice.delete(f"/push/subscriptions/{sub_id}").status_code == 404
    assert httpx.get(f"http://{served.serve.http}{API}/push/key").status_code == 401


@pytest.fixture
def strict(tmp_path: Path, push: PushService) -> Iterator[Served]:
    yield from serve(tmp_path, push)


def test_endpoints_that_are_not_public_https_are_refused(strict: Served) -> None:
    push, alice = strict.push, strict.client("alice")
    good = push.subscription(push.browser("alice"))
    for endpoint in (good["endpoint"],  # http, on loopback
                     good["endpoint"].replace("http:", "https:"),  # loopback
                     "https://10.0.0.1/push/1", "https://169.254.169.254/latest",
                     "https://[::1]/push", "ftp://push.example.net/x"):
        answer = alice.post("/push/subscriptions", json={**good, "endpoint": endpoint})
        assert answer.status_code == 422, (endpoint, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == "endpoint", answer.json()
    short = {**good, "keys": {**good["keys"], "auth": "c2hvcnQ"}}
    answer = alice.post("/push/subscriptions", json=short)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "keys.auth"
    missing = alice.post("/push/subscriptions", json={"endpoint": good["endpoint"]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "keys"
    assert alice.get("/push/subscriptions").json() == []
    # Nor is one that slipped into the database sent to: it is refused at send time too.
    keys = good["keys"]
    PushSubscriptions(strict.store).add("alice", good["endpoint"], keys["p256dh"],
                                        keys["auth"], allow_private=True)

    def dead() -> bool:
        if "dead" in outbox_states(strict, "alice"):
            return True
        strict.publish("ci.build.failed", {"build": {"nvr": "x-1-1", "url": "https://e.org"}})
        return False

    wait_for(dead, "alice's notification to be refused", timeout=20,
             context=strict.serve.log, interval=0.5)
    assert push.pushes == []
    rows = [r for r in Outbox(strict.store).rows(user="alice") if r.state == "dead"]
    assert "https" in (rows[0].last_error or "")
