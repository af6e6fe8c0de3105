"""Each part of a running service fails in turn: it restarts, health says so, nothing is lost.

The service runs in this process against a real SMTP server (aiosmtpd) and
its own bus; faults are injected by making one of our own methods raise
until the test has seen health turn to 503, naming the part. Messages
published before, during and after the fault must all reach alice (mail
and feed) and bob (digests), and every outbox row must end sent.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
import zmq

from notifier.service.webproc import WebProcess
from tests.conftest import WAIT, wait_for
from tests.integration.service.conftest import World

pytestmark = pytest.mark.integration


class Boom(RuntimeError):
    """The injected fault."""


def faulty(fault: threading.Event, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, raising Boom while ``fault`` is set."""
    def call(*args: Any, **kwargs: Any) -> Any:
        if fault.is_set():
            raise Boom("injected fault")
        return original(*args, **kwargs)
    return call


def kick_relay(world: World) -> None:
    """End the relay's proxy loop from outside, as if it had failed on its own."""
    relay = world.service.relay  # type: ignore[union-attr]
    assert relay is not None
    ctrl = relay._ctx.socket(zmq.PAIR)
    ctrl.setsockopt(zmq.LINGER, 0)
    ctrl.connect(relay._control_address)
    try:
        ctrl.send(b"TERMINATE")
        # Closed only once the proxy has read it: closing at once may discard it.
        wait_for(lambda: world.metric("notifier_component_restarts_total",
                                      component="relay") >= 1, "the relay's loop to end")
    finally:
        ctrl.close()


def inject(part: str, world: World, fault: threading.Event,
           monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``part`` fail (now, and on every restart while ``fault`` is set)."""
    service = world.service
    assert service is not None
    fault.set()
    if part == "relay":
        assert service.relay is not None
        monkeypatch.setattr(service.relay, "_forward", faulty(fault, service.relay._forward))
        kick_relay(world)
    elif part == "ingest":
        subscriber = service.ingest.subscriber
        monkeypatch.setattr(subscriber, "recv", faulty(fault, subscriber.recv))
    elif part.startswith("worker-"):
        (worker,) = [w for w in service.dispatcher.workers if w.name == part]
        monkeypatch.setattr(worker, "run_once", faulty(fault, worker.run_once))
        worker.wake()
    elif part == "sent-log":
        sent_log = service.dispatcher.sent_log
        monkeypatch.setattr(sent_log, "flush", faulty(fault, sent_log.flush))
        world.publish("during 0")  # it fails when it has something to write
    elif part == "digests":
        monkeypatch.setattr(service.outbox, "held_groups",
                            faulty(fault, service.outbox.held_groups))
    elif part == "changes":
        monkeypatch.setattr(service.store, "changes_after",
                            faulty(fault, service.store.changes_after))
    elif part == "http" and isinstance(service.web, WebProcess):
        os.kill(service.web._process.pid, signal.SIGKILL)  # a real death, not an exception
        fault.clear()
    elif part == "http":
        # The live-stream reader fails (the server stops), and each restart fails at once,
        # reading where the streams start.
        hub = service.web.hub
        failure = hub.failure
        monkeypatch.setattr(hub, "failure",
                            lambda: Boom("injected fault") if fault.is_set() else failure())
        monkeypatch.setattr(hub.outbox, "last_id", faulty(fault, hub.outbox.last_id))
    elif part == "housekeeping":
        monkeypatch.setattr(service.store, "prune_history",
                            faulty(fault, service.store.prune_history))
        service.housekeeping.interrupt()
    elif part == "sender":
        sender = service.dispatcher.sender
        assert sender is not None
        os.kill(sender._process.pid, signal.SIGKILL)  # a real death, not an exception
        fault.clear()
    else:
        raise AssertionError(f"no fault for {part}")


def delivered_everything(world: World) -> bool:
    """alice has every message by mail and in her feed; bob every one in a digest."""
    want = sorted(f"[git] {text}" for text in world.published)
    if world.subjects("alice@example.org") != want:
        return False
    digests = " ".join(m.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                       for m in world.smtp.handler.messages if "bob@example.org" in m.rcpt_tos)
    if not all(text in digests for text in world.published):
        return False
    states = world.outbox_states()
    return set(states) <= {"sent", "digested"}


def health_names(world: World, part: str) -> bool:
    """Health (over HTTP, or asked directly while HTTP itself is the part down) is 503
    naming ``part``."""
    assert world.service is not None
    if part == "http":
        ok, report = world.service.health("ready")
        return not ok and part in report["failing"]
    status, report = world.health()
    return status == 503 and part in report["failing"] and report["status"] != "ok"


IN_PROCESS_PARTS = ["relay", "ingest", "worker-email-1", "worker-rss", "sent-log", "digests",
                    "changes", "http", "housekeeping"]


@pytest.mark.parametrize("case", [*IN_PROCESS_PARTS, "sender", "http-process"])
def test_a_failing_part_restarts_health_follows_and_nothing_is_lost(
        world_for: Callable[..., World], case: str, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    # "http-process": the HTTP side in its child process, which is killed.
    part = case.removesuffix("-process")
    world = world_for(sender_process=part == "sender", http_process=case == "http-process")
    service = world.make()
    service.housekeeping.interval = 0.2  # it runs hourly; a fault must show sooner here
    world.service = service
    service.start()
    wait_for(lambda: world.health()[0] == 200, "the service to be ready")
    assert part in service.supervisor.names
    ok, report = service.health("live")
    assert ok and report["parts"][part]["state"] == "running"

    world.publish("before 1", "before 2")
    wait_for(lambda: delivered_everything(world), "what was published before the fault")

    fault = threading.Event()
    inject(part, world, fault, monkeypatch)
    request.addfinalizer(fault.clear)
    wait_for(lambda: world.metric("notifier_component_restarts_total", component=part) >= 1,
             f"{part} to fail and be counted")
    wait_for(lambda: health_names(world, part), f"health to name {part}")
    assert part == "http" or world.health("live")[0] == 200  # down, but worth keeping
    world.publish("during 1", "during 2")
    if part == "changes":
        # A rule imported while the change watcher is down applies once it is back.
        with_rule = {"user": "carol", "name": "git", "destinations": ["email"],
                     "track": {"kind": "topics", "patterns": ["*.git.*"]}}
        service.store.upsert_rules([with_rule])
    fault.clear()
    wait_for(lambda: world.health()[0] == 200, f"health to be 200 again after {part}")
    assert service.supervisor.health("ready")[1]["parts"][part]["state"] == "running"
    if part == "changes":
        last = service.store.last_change()
        wait_for(lambda: service.changes.seen >= last, "the change watcher to catch up")

    world.publish("after 1", "after 2")
    wait_for(lambda: delivered_everything(world), f"every message, across the {part} fault",
             timeout=WAIT * 2)
    # Once each: nothing twice either.
    assert world.subjects("alice@example.org") == sorted(
        f"[git] {t}" for t in ["before 1", "before 2", "during 1", "during 2", "after 1",
                               "after 2"] + (["during 0"] if part == "sent-log" else []))
    assert world.feed_titles("alice") == world.subjects("alice@example.org")
    if part == "changes":
        wait_for(lambda: "[git] after 1" in world.subjects("carol@example.org"),
                 "carol's rule to apply after the change watcher came back")
    # Only that part was restarted.
    restarted = {name: info["restarts"] for name, info in
                 service.supervisor.health("ready")[1]["parts"].items() if info["restarts"]}
    assert list(restarted) == [part]
    service.stop()
    assert service.gave_up is None
