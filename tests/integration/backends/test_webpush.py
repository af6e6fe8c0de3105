"""The webpush backend against the stand-in push service: what it answers, and what is sent.

The contract suite (contract.py) covers what every backend does; these cover
what only Web Push has: Urgency by severity, the TTL, the 4 KiB payload with
its link intact, subscriptions that are gone, Retry-After, several browsers
of one user, and endpoints on addresses that are not public.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.backends.webpush import MAX_PAYLOAD, WebpushBackend, payload
from notifier.config import config_from_dict
from notifier.delivery.workers import BackendWorker
from notifier.errors import ConfigError, PermanentDeliveryError, TemporaryDeliveryError
from notifier.notification import Notification
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from notifier.storage.push import PushSubscriptions, application_server_key
from tests.conftest import wait_for
from tests.integration.outbox_rows import Clock, envelope
from tests.integration.pushservice import Browser, PushService

pytestmark = pytest.mark.integration


class World:
    def __init__(self, tmp_path: Path, service: PushService):
        self.url = f"sqlite:///{tmp_path / 'push.db'}"
        self.service = service
        self.store = Store(self.url)
        self.subs = PushSubscriptions(self.store)
        self.backends: list[WebpushBackend] = []

    def config(self, **webpush: Any) -> Any:
        return config_from_dict({"database_url": self.url, "webpush": {
            "contact": "mailto:admin@example.org", "allow_private_endpoints": True,
            "ttl": "2h", **webpush}})

    def backend(self, **webpush: Any) -> WebpushBackend:
        backend = WebpushBackend(self.config(**webpush))
        self.backends.append(backend)
        backend.setup()
        return backend

    def browser(self, user: str, answers: list[int] | None = None) -> tuple[Browser, int]:
        browser = self.service.browser(user, answers)
        keys = browser.keys()
        sub = self.subs.add(user, self.service.endpoint(browser), keys["p256dh"],
                            keys["auth"], "Firefox on Linux", allow_private=True)
        return browser, sub.id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    service = PushService().start()
    world = World(tmp_path, service)
    try:
        yield world
    finally:
        for backend in world.backends:
            backend.close()
        service.stop()
        world.store.close()


def note(user: str = "alice", severity: str = "info", body: str = "it built",
         link: str | None = "https://koji.example.org/taskinfo?id=1",
         title: str = "Build finished") -> Notification:
    return Notification(user=user, destination="webpush", address=user,
                        msg_id=f"2026-{uuid.uuid4()}", topic="org.example.build", app="koji",
                        content={"title": title, "body": body}, link=link,
                        icon="https://apps.example.org/koji.png", severity=severity,
                        timestamp=time.time())


def test_vapid_ttl_urgency_and_payload(world: World) -> None:
    world.browser("alice")
    backend = world.backend()
    served = application_server_key(world.subs.vapid_key())
    assert backend.public_key() == served
    for severity in ("error", "warning", "info", "debug"):
        backend.send(note(severity=severity))
    pushes = wait_for(lambda: len(world.service.taken()) == 4 and world.service.taken(),
                      "four pushes")
    assert not world.service.problems
    assert [p.urgency for p in pushes] == ["high", "normal", "low", "very-low"]
    assert {p.ttl for p in pushes} == {7200}
    assert {p.key for p in pushes} == {served}
    assert pushes[0].claims["aud"] == world.service.origin
    assert pushes[0].claims["sub"] == "mailto:admin@example.org"
    assert pushes[0].payload["title"] == "Build finished"
    assert pushes[0].payload["link"] == "https://koji.example.org/taskinfo?id=1"
    assert pushes[0].payload["icon"] == "https://apps.example.org/koji.png"
    (sub,) = world.subs.list("alice")
    assert sub.last_success is not None


def test_a_long_body_is_cut_never_the_link(world: World) -> None:
    world.browser("alice")
    link = "https://koji.example.org/taskinfo?id=" + "7" * 1500
    backend = world.backend()
    backend.send(note(body="caf\u00e9 \u2713 " * 1000, link=link))
    (push,) = wait_for(world.service.taken, "the push")
    assert push.payload["link"] == link
    assert push.payload["body"].endswith("\u2026")
    assert push.payload["body"].startswith("caf\u00e9 \u2713 caf\u00e9")
    assert push.payload["title"] == "Build finished"
    assert len(payload(note(body="x" * 10000, link=link))) <= MAX_PAYLOAD
    with pytest.raises(PermanentDeliveryError):
        payload(note(link="https://example.org/" + "x" * MAX_PAYLOAD))


def test_a_gone_subscription_is_removed_and_no_failure(world: World) -> None:
    world.browser("alice", answers=[410])
    kept, kept_id = world.browser("alice")
    world.browser("bob", answers=[404])
    backend = world.backend()
    backend.send(note())  # one browser took it, the other is gone
    assert [s.id for s in world.subs.list("alice")] == [kept_id]
    backend.send(note(user="bob"))  # his only browser is gone: nothing failed
    assert world.subs.list("bob") == []
    assert [p.path for p in world.service.taken()] == [kept.path]
    with pytest.raises(PermanentDeliveryError, match="no browser subscribed"):
        backend.send(note(user="bob"))


def test_busy_and_failing_services_are_temporary_with_retry_after(world: World) -> None:
    browser, _ = world.browser("alice", answers=[429, 503])
    browser.headers["Retry-After"] = "120"
    backend = world.backend()
    with pytest.raises(TemporaryDeliveryError) as info:
        backend.send(note())
    assert "429" in str(info.value) and info.value.retry_after == 120.0
    assert info.value.__cause__ is not None
    with pytest.raises(TemporaryDeliveryError, match="503"):
        backend.send(note())
    backend.send(note(title="third time"))
    assert [p.payload["title"] for p in world.service.taken()] == ["third time"]
    assert len(world.subs.list("alice")) == 1


def test_other_client_errors_are_permanent_unless_another_browser_took_it(
        world: World) -> None:
    world.browser("alice", answers=[403, 403])
    backend = world.backend()
    with pytest.raises(PermanentDeliveryError, match="403"):
        backend.send(note())
    world.browser("alice")
    backend.send(note(title="reached the other"))
    assert [p.payload["title"] for p in world.service.taken()] == ["reached the other"]
    assert len(world.subs.list("alice")) == 2  # a 403 removes nothing


def test_an_endpoint_on_a_private_address_is_refused_at_send_time(world: World) -> None:
    world.browser("alice")
    backend = world.backend(allow_private_endpoints=False)
    with pytest.raises(PermanentDeliveryError, match="not a public address|over https"):
        backend.send(note())
    assert world.service.taken() == []


def test_a_host_that_resolves_to_a_private_address_is_refused(world: World) -> None:
    # A public-looking name whose DNS answer is (also) a private address.
    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        assert host == "push.example.net"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    keys = world.service.browser("alice").keys()
    PushSubscriptions(world.store, resolve=resolve).add(
        "alice", "https://push.example.net/p/1", keys["p256dh"], keys["auth"],
        allow_private=True)
    backend = WebpushBackend(world.config(allow_private_endpoints=False), resolve=resolve)
    world.backends.append(backend)
    with pytest.raises(PermanentDeliveryError, match="10.1.2.3"):
        backend.send(note())


def test_settings_are_checked_at_setup(world: World) -> None:
    with pytest.raises(ConfigError, match="contact"):
        WebpushBackend(world.config(contact="")).setup()
    with pytest.raises(ConfigError, match="ttl"):
        world.config(ttl="0s")
    with pytest.raises(ConfigError, match="contact"):
        world.config(contact="admin@example.org")


def test_the_outbox_waits_as_long_as_retry_after_asks(world: World) -> None:
    browser, _ = world.browser("alice", answers=[503])
    browser.headers["Retry-After"] = "600"
    clock = Clock()
    config = config_from_dict({"database_url": world.url, "webpush": {
        "contact": "mailto:admin@example.org", "allow_private_endpoints": True},
        "delivery": {"retry_base": 5.0, "retry_max": 3600.0}})
    outbox = Outbox(world.store, clock)
    msg = note()
    outbox.record([envelope(msg.msg_id)], [(msg, "pending")])
    worker = BackendWorker(config, outbox, WebpushBackend(config), batch=5, chunk=5)
    worker.setup()
    try:
        assert worker.run_once()
    finally:
        worker.close()
    (row,) = outbox.rows()
    assert row.state == "failed" and "503" in (row.last_error or "")
    assert row.next_attempt == clock.now + 600  # not the 2.5 to 5 s of the first backoff



def _worker(world: World, clock: Clock) -> tuple[Outbox, BackendWorker]:
    config = config_from_dict({"database_url": world.url, "webpush": {
        "contact": "mailto:admin@example.org", "allow_private_endpoints": True},
        "delivery": {"retry_base": 5.0, "retry_max": 60.0}})
    outbox = Outbox(world.store, clock)
    worker = BackendWorker(config, outbox, WebpushBackend(config), batch=5, chunk=5)
    worker.setup()
    return outbox, worker


def _attempt(outbox: Outbox, worker: BackendWorker, clock: Clock) -> str:
    """Make the row due, run the worker once; the row's state after."""
    (row,) = outbox.rows()
    if row.next_attempt is not None:
        clock.now = max(clock.now, row.next_attempt + 1)
    worker.wake(database=True)
    assert worker.run_once()
    (row,) = outbox.rows()
    return row.state


def test_a_retry_goes_only_to_the_browsers_that_did_not_take_it(world: World) -> None:
    took, _ = world.browser("alice")
    busy, _ = world.browser("alice", answers=[503, 502])
    refusing, _ = world.browser("alice", answers=[403] * 9)
    clock = Clock()
    outbox, worker = _worker(world, clock)
    msg = note(title="one of three")
    outbox.record([envelope(msg.msg_id)], [(msg, "pending")])
    try:
        assert _attempt(outbox, worker, clock) == "failed"  # busy said 503
        (row,) = outbox.rows()
        assert "1 of 3 browsers took it" in (row.last_error or "")
        assert _attempt(outbox, worker, clock) == "failed"  # busy said 502
        assert _attempt(outbox, worker, clock) == "sent"  # busy took it; refusing never
    finally:
        worker.close()
    pushes = [(p.path, p.status) for p in world.service.pushes]
    # took got it once, on the first attempt; no retry went to it again.
    assert pushes.count((took.path, 201)) == 1
    assert [s for path, s in pushes if path == busy.path] == [503, 502, 201]
    assert [s for path, s in pushes if path == refusing.path] == [403, 403, 403]
    assert not world.service.problems
    # The note of who took it is gone with the notification.
    assert world.subs.pending("alice", msg.msg_id)[1] == set()


def test_a_busy_browser_fails_the_notification_even_when_another_took_it(
        world: World) -> None:
    took, took_id = world.browser("alice")
    busy, busy_id = world.browser("alice", answers=[429])
    busy.headers["Retry-After"] = "30"
    backend = world.backend()
    msg = note()
    with pytest.raises(TemporaryDeliveryError, match="1 of 2 browsers took it") as info:
        backend.send(msg)
    assert info.value.retry_after == 30.0
    assert world.subs.pending("alice", msg.msg_id)[1] == {took_id}
    backend.send(msg)  # the retry
    assert [p.path for p in world.service.taken()] == [took.path, busy.path]
    assert world.subs.pending("alice", msg.msg_id)[1] == set()
    # Removing a browser forgets its notes too.
    other = note()
    busy.answers.append(503)
    with pytest.raises(TemporaryDeliveryError):
        backend.send(other)
    assert world.subs.pending("alice", other.msg_id)[1] == {took_id}
    assert world.subs.remove("alice", took_id)
    assert world.subs.pending("alice", other.msg_id)[1] == set()
    backend.send(other)
    assert [p.path for p in world.service.taken()] == [took.path, busy.path, took.path,
                                                       busy.path]
    assert [s.id for s in world.subs.list("alice")] == [busy_id]
