"""Quiet hours through the whole service: the bus, the pipeline, the digests, a real SMTP server.

Dana's quiet hours are 22:00 to 07:00 in Prague. The service reads them
against a clock the test sets (the rest of it runs on real time): during
them an info message is held and an error one is mailed at once; once they
are over, one digest mail holds what was held, also after a restart.
"""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

import notifier.service.supervisor as supervisor_module
from notifier.bus.publisher import Publisher
from notifier.config import Config, config_from_dict
from notifier.service.app import Service
from tests.conftest import free_port, wait_for
from tests.integration.backends.peers_email import SmtpPeer, delivered_text
from tests.integration.outbox_rows import Clock
from tests.integration.service.conftest import seed

pytestmark = pytest.mark.integration

DANA = "dana@example.org"
QUIET = {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def config_for(tmp_path: Path, smtp: SmtpPeer) -> Config:
    return config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'notifier.db'}",
        "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "email": {**smtp.config()["email"], "connections": 1},
        "delivery": {"retry_base": 0.2, "retry_max": 1.0},
        # The site's CI failures are errors; everything else is info.
        "meta": {"mappings": [{"topic": "*.ci.build.*", "app": "ci",
                               "summary": "{build} failed to build", "severity": "error"}]},
    }, str(tmp_path / "notifier.toml"))


def mails_to(smtp: SmtpPeer, address: str) -> list[EmailMessage]:
    found = []
    for received in list(smtp.handler.messages):
        if address in received.rcpt_tos:
            parsed = message_from_bytes(received.data.replace(b"\r\n", b"\n"),
                                        policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
    return found


def started(config: Config, clock: Clock) -> Service:
    service = Service(config)
    service.pipeline.clock = clock
    service.digests.clock = clock
    service.start()
    return service


def publish_until(publisher: Publisher, seen: Any, what: str, **message: Any) -> None:
    """Publish until ``seen()`` (a subscription takes a moment to reach the relay): the
    message may land more than once."""
    def landed() -> bool:
        if not seen():
            publisher.publish(**message)
        return bool(seen())
    wait_for(landed, what, timeout=20, interval=0.5)


def test_quiet_hours_hold_info_send_errors_and_one_digest_at_their_end(
        tmp_path: Path, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "BACKOFF_BASE", 0.2)
    monkeypatch.setattr(supervisor_module, "BACKOFF_CAP", 0.2)
    config = config_for(tmp_path, smtp)
    seed(config, [{"name": "dana", "emails": [DANA], "delivery": {"quiet_hours": QUIET}}], [
        {"user": "dana", "name": "everything", "destinations": ["email"],
         "track": {"kind": "topics", "patterns": ["*.git.*", "*.ci.*"]},
         "filters": {"severities": ["info", "warning", "error"]}},
    ])
    clock = Clock(at("2026-01-15 23:30"))  # 00:30 in Prague: quiet
    service = started(config, clock)
    publisher = Publisher(config)
    try:
        def held() -> list[Any]:
            return service.outbox.rows(states=["held"], user="dana")

        publish_until(publisher, held, "the info message to be held",
                      topic="repo.update", msg={"log": "a quiet commit"}, modname="git")
        # Subscribed now: the error goes once, after the info message(s) on the same socket.
        publisher.publish(topic="build.failed", msg={"build": "kernel-6.1"}, modname="ci")
        wait_for(lambda: mails_to(smtp, DANA), "the error to be mailed", timeout=20)
        (error,) = mails_to(smtp, DANA)
        assert "kernel-6.1 failed to build" in delivered_text(error)
        assert error["X-Notifier-Digest"] is None
        count = len(held())
        assert count >= 1
        assert all("quiet commit" in str(r.notification.content) for r in held())
        # Still quiet: no pass of the scheduler sends anything.
        assert service.digests.run_once() == 0
    finally:
        publisher.close()
        service.stop()

    # A restart during the quiet hours loses nothing; their end is worked out afresh.
    assert len(mails_to(smtp, DANA)) == 1
    service = started(config, clock)
    try:
        assert service.digests.run_once() == 0
        assert len(service.outbox.rows(states=["held"], user="dana")) == count
        clock.now = at("2026-01-16 06:00")  # 07:00 in Prague
        wait_for(lambda: len(mails_to(smtp, DANA)) == 2, "the digest mail", timeout=20)
        digest = mails_to(smtp, DANA)[1]
        assert digest["X-Notifier-Digest"] == str(count)
        assert "quiet commit" in delivered_text(digest)
        assert "kernel-6.1" not in delivered_text(digest)  # sent already, at once
        assert service.outbox.rows(states=["held"], user="dana") == []
        assert len(service.outbox.rows(states=["digested"], user="dana")) == count
    finally:
        service.stop()
    assert len(mails_to(smtp, DANA)) == 2  # one digest, nothing more
