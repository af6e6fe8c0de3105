"""The inbox, why, mute and snooze, and the admin routes, over HTTP against ``notifier serve``.

Messages go onto the service's own relay; what they became is read back
through the API with httpx, with personal access tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.storage import Store
from notifier.storage.credentials import Credentials
from notifier.storage.outbox import Outbox
from tests.conftest import free_port, wait_for
from tests.integration.rawbus import RawPublisher
from tests.integration.serveproc import ServeProcess, write_toml

pytestmark = pytest.mark.integration

API = "/api/v1"


def topic_rule(user: str, name: str, pattern: str) -> dict[str, Any]:
    return {"user": user, "name": name, "track": {"kind": "topics", "patterns": [pattern]},
            "destinations": ["rss"]}


@dataclass
class World:
    serve: ServeProcess
    store: Store
    publisher: RawPublisher
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str) -> httpx.Client:
        """A client for ``who`` (``alice``, or ``alice:read`` for her read token)."""
        return httpx.Client(base_url=f"http://{self.serve.http}{API}", timeout=10,
                            headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def send(self, modname: str, topic: str, text: str) -> str:
        frames = self.publisher.builder.encode(modname, topic, {"log": text})
        self.publisher.send(*frames)
        return str(json.loads(frames[1])["msg_id"])

    def newest(self, who: str, msg_id: str) -> dict[str, Any] | None:
        """``who``'s newest notification, if it is the one for ``msg_id``."""
        with self.client(who) as client:
            items = client.get("/notifications", params={"limit": 1}).json()["items"]
        return items[0] if items and items[0]["msg_id"] == msg_id else None

    def counts(self, who: str) -> dict[str, int]:
        with self.client(who) as client:
            answer = client.get("/notifications/counts")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    http = f"127.0.0.1:{free_port()}"
    inbound = f"tcp://127.0.0.1:{free_port()}"
    url = f"sqlite:///{tmp_path / 'notifier.db'}"
    config = write_toml(tmp_path / "notifier.toml", {
        "database_url": url,
        "bus": {"relay_inbound": inbound, "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": http}, "email": {"maildir": str(tmp_path / "Maildir")},
        "web": {"admins": ["carol"]}})
    store = Store(url)
    store.import_users([{"name": n, "emails": [f"{n}@example.org"]}
                        for n in ("alice", "bob", "carol")])
    store.upsert_rules([topic_rule("alice", "mine", "*.hostile.*"),
                        topic_rule("alice", "things", "*.thing.*"),
                        topic_rule("bob", "all", "*")])
    credentials = Credentials(store)
    tokens = {}
    for user in ("alice", "bob", "carol"):
        tokens[user] = credentials.create_token(user, "tests", "write")[0]
        tokens[f"{user}:read"] = credentials.create_token(user, "reading", "read")[0]
    serve = ServeProcess(config, http, tmp_path / "serve.log").start()
    publisher = RawPublisher(inbound)
    world = World(serve, store, publisher, tokens)
    try:
        probes: list[str] = []

        def flowing() -> bool:  # ZeroMQ subscriptions take a moment: probe until one lands
            if world.counts("bob")["total"]:
                return True
            probes.append(world.send("probe", "ping", f"probe {len(probes)}"))
            return False

        wait_for(flowing, "a probe to reach bob's inbox", context=serve.log, interval=0.2)
        yield world
    finally:
        publisher.close()
        serve.ensure_stopped()
        store.close()


def test_inbox_read_state_why_snooze_and_admin(world: World) -> None:
    sent = [world.send("hostile", "thing.happened", f"event {i}") for i in range(3)]
    wait_for(lambda: world.counts("alice")["total"] == 3, "three notifications for alice",
             context=world.serve.log)
    alice = world.client("alice")
    # Each rule counts what it sent in the last 7 days.
    assert {r["name"]: r["sent_7d"] for r in alice.get("/rules").json()} == {
        "mine": 3, "things": 3}
    # Pages, newest first, by cursor.
    first = alice.get("/notifications", params={"limit": 2}).json()
    assert [i["msg_id"] for i in first["items"]] == sent[:0:-1]
    assert first["counts"] == {"total": 3, "unread": 3}
    assert first["items"][0]["title"] == "event 2" and first["items"][0]["read"] is False
    assert set(first["items"][0]["rules"]) == {"mine", "things"}
    rest = alice.get("/notifications", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [i["msg_id"] for i in rest.json()["items"]] == sent[:1]
    assert rest.json()["next_cursor"] is None
    bad = alice.get("/notifications", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cursor"
    assert alice.get("/notifications", params={"limit": 101}).status_code == 422
    ids = [i["id"] for i in first["items"]] + [rest.json()["items"][0]["id"]]  # newest first

    # Read, unread, read-all up to a row.
    read = alice.post("/notifications/read", json={"ids": [ids[0]]})
    assert read.status_code == 200 and read.json()["counts"] == {"total": 3, "unread": 2}
    unread = alice.get("/notifications", params={"unread": "true"}).json()["items"]
    assert [i["id"] for i in unread] == ids[1:]
    assert alice.post("/notifications/unread", json={"ids": [ids[0]]}).json()["counts"] == {
        "total": 3, "unread": 3}
    done = alice.post("/notifications/read-all", json={"up_to": ids[1]}).json()
    assert done == {"marked": 2, "counts": {"total": 3, "unread": 1}}
    assert [i["id"] for i in alice.get("/notifications", params={"unread": True})
            .json()["items"]] == [ids[0]]
    # A read token reads but does not write; another user's rows are not there.
    with world.client("alice:read") as reader:
        assert reader.get("/notifications/counts").status_code == 200
        assert reader.post("/notifications/read", json={"ids": [ids[0]]}).status_code == 403
    with world.client("bob") as bob:
        assert bob.post("/notifications/read", json={"ids": [ids[0]]}).status_code == 404
        assert bob.get(f"/notifications/{ids[0]}/why").status_code == 404
        assert bob.post("/rules/mine/mute").status_code == 404
    assert world.counts("alice") == {"total": 3, "unread": 1}

    # Why: each rule, and what matched.
    why = alice.get(f"/notifications/{ids[0]}/why").json()
    reasons = {r["name"]: r["reason"] for r in why["rules"]}
    assert reasons == {"mine": "topic matches '*.hostile.*'",
                       "things": "topic matches '*.thing.*'"}
    assert all(r["rule"]["disabled"] is False for r in why["rules"])

    # Mute one rule, snooze the other: nothing reaches alice until the snooze ends.
    assert alice.post("/rules/things/mute").json()["disabled"] is True
    assert alice.post("/rules/nothing/mute").status_code == 404
    assert alice.post("/rules/mine/snooze", json={"for": "soon"}).status_code == 422
    snoozed = alice.post("/rules/mine/snooze", json={"for": "5s"}).json()
    until = snoozed["snoozed_until"]
    assert until is not None and until > time.time()
    quiet = world.send("hostile", "thing.happened", "while snoozed")
    # Bob's rule matches it in the same pass as alice's rules.
    got = wait_for(lambda: world.newest("bob", quiet), "bob to get the message",
                   context=world.serve.log)
    assert got["created_at"] < until  # matched while the snooze lasted
    outbox = Outbox(world.store)
    assert world.counts("alice")["total"] == 3
    assert not [r for r in outbox.rows(user="alice") if r.msg_id == quiet]
    muted_why = alice.get(f"/notifications/{ids[0]}/why").json()
    assert {r["name"]: r["rule"]["disabled"] for r in muted_why["rules"]} == {
        "mine": False, "things": True}
    wait_for(lambda: time.time() > until + 0.1, "the snooze to end")
    woke = world.send("hostile", "thing.happened", "after the snooze")
    wait_for(lambda: world.counts("alice")["total"] == 4, "alice's rule to wake",
             context=world.serve.log)
    newest = alice.get("/notifications", params={"limit": 1}).json()["items"][0]
    assert newest["msg_id"] == woke and newest["rules"] == ["mine"]  # "things" is muted
    assert [r for r in outbox.rows(user="alice") if r.msg_id == woke]  # delivered to rss
    assert alice.post("/rules/things/unmute").json()["disabled"] is False
    alice.close()

    # Admin: carol may, others may not.
    with world.client("bob") as bob:
        assert bob.get("/admin/users").status_code == 403
        assert bob.get("/admin/rules").status_code == 403
    with world.client("carol") as carol:
        assert [u["name"] for u in carol.get("/admin/users").json()] == [
            "alice", "bob", "carol"]
        assert "feed_token" not in carol.get("/admin/users").json()[0]
        rules = carol.get("/admin/rules", params={"user": "alice"}).json()
        assert [r["name"] for r in rules] == ["mine", "things"]
        mine = rules[0]["id"]
        with world.client("bob") as bob:
            assert bob.post(f"/admin/rules/{mine}/disable").status_code == 403
        with world.client("carol:read") as reader:
            assert reader.get("/admin/rules").status_code == 200
            assert reader.post(f"/admin/rules/{mine}/disable").status_code == 403
        off = carol.post(f"/admin/rules/{mine}/disable")
        assert off.status_code == 200 and off.json()["disabled"] is True
        assert world.store.get_rule("alice", "mine")["disabled"] is True  # type: ignore[index]
        assert carol.post(f"/admin/rules/{mine}/enable").json()["disabled"] is False
        assert carol.post("/admin/rules/100000/disable").status_code == 404
