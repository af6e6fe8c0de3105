"""The webpush backend's payload and Retry-After, without a push service."""

from __future__ import annotations

import email.utils

import orjson
import pytest

from notifier.backends.webpush import MAX_PAYLOAD, URGENCY, origin, payload, retry_after
from notifier.errors import PermanentDeliveryError
from notifier.notification import Notification


def note(title: str = "Build finished", body: str = "it built",
         link: str | None = "https://example.org/1", icon: str | None = None) -> Notification:
    return Notification(user="alice", destination="webpush", address="alice", msg_id="m1",
                        topic="t", app="koji", content={"title": title, "body": body},
                        link=link, icon=icon, severity="warning")


def test_the_payload_carries_title_body_link_and_icon() -> None:
    data = orjson.loads(payload(note(icon="https://example.org/i.png")))
    assert {k: data[k] for k in ("title", "body", "link", "icon", "severity", "tag")} == {
        "title": "Build finished", "body": "it built", "link": "https://example.org/1",
        "icon": "https://example.org/i.png", "severity": "warning", "tag": "m1"}


@pytest.mark.parametrize("body", ["x" * 5000, "\u6f22" * 3000, '"\\' * 2000, "\U0001f680" * 2000])
def test_a_long_body_is_cut_to_fit(body: str) -> None:
    encoded = payload(note(body=body))
    assert len(encoded) <= MAX_PAYLOAD
    data = orjson.loads(encoded)
    assert data["body"].endswith("\u2026") and body.startswith(data["body"][:-1])
    assert len(encoded) > MAX_PAYLOAD - 8  # cut no more than needed
    assert data["link"] == "https://example.org/1"


def test_the_icon_then_the_title_go_before_the_link() -> None:
    link = "https://example.org/" + "l" * 3000
    data = orjson.loads(payload(note(title="t" * 2000, body="b" * 2000, link=link,
                                     icon="https://example.org/" + "i" * 500)))
    assert data["link"] == link and data["body"] == "" and data["icon"] is None
    assert data["title"].startswith("ttt") and data["title"].endswith("\u2026")
    with pytest.raises(PermanentDeliveryError, match="does not fit"):
        payload(note(link="https://example.org/" + "l" * MAX_PAYLOAD))


def test_no_title_is_permanent() -> None:
    with pytest.raises(PermanentDeliveryError, match="title"):
        payload(note(title=""))


def test_urgency_by_severity() -> None:
    assert URGENCY == {"error": "high", "warning": "normal", "info": "low",
                       "debug": "very-low"}


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("120", 0.0) == 120.0
    now = 1_800_000_000.0
    assert retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == 30.0
    assert retry_after("yesterday", now) is None
    assert retry_after(None, now) is None


def test_the_audience_is_the_endpoints_origin() -> None:
    assert origin("https://Push.Example.NET/wpush/v2/x?y=1") == "https://push.example.net"
    assert origin("https://push.example.net:443/x") == "https://push.example.net"
    assert origin("https://push.example.net:8443/x") == "https://push.example.net:8443"
    assert origin("http://127.0.0.1:80/push/1") == "http://127.0.0.1"
    assert origin("http://127.0.0.1:8080/push/1") == "http://127.0.0.1:8080"
