"""Shared data for the render tests: a realistic described message, a user, a renderer."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.backends.base import Backend
from notifier.config import Config, config_from_dict
from notifier.notification import Notification
from notifier.render import Renderer

SECRET = b"per-installation secret for tests"


class IrcLike(Backend):
    """Capabilities as an IRC backend declares them."""

    name = "irc"
    single_line = True
    max_length = 450

    def send(self, notification: Notification) -> None:
        raise NotImplementedError


class DesktopLike(Backend):
    """Capabilities as a D-Bus desktop backend declares them."""

    name = "desktop"
    markup = "pango"

    def send(self, notification: Notification) -> None:
        raise NotImplementedError


BACKENDS: dict[str, type[Backend]] = {"irc": IrcLike, "desktop": DesktopLike}


def described_message(**changes: Any) -> dict[str, Any]:
    message = {
        "msg_id": "2024-5b1c2f4e-7e3a-4d8e-9d0f-1b2c3d4e5f60",
        "topic": "org.fedoraproject.prod.bodhi.update.comment",
        "app": "bodhi",
        "summary": "alice commented on bodhi update python-requests-2.31.0-1.fc40 (karma: 1)",
        "link": "https://bodhi.fedoraproject.org/updates/FEDORA-2024-1a2b3c4d5e",
        "icon": "https://apps.fedoraproject.org/img/icons/bodhi.png",
        "usernames": ["alice", "bob"],
        "agent": "alice",
        "packages": ["python-requests"],
        "groups": [],
        "severity": "info",
    }
    message.update(changes)
    return message


def envelope_for(described: dict[str, Any], timestamp: float = 1714560000) -> dict[str, Any]:
    return {"topic": described["topic"], "msg": {"comment": {"text": "works for me"}},
            "msg_id": described["msg_id"], "timestamp": timestamp, "username": "apache", "i": 1}


USER = {"name": "bob", "emails": ["bob@example.org"], "ircnicks": ["bob"], "groups": ["packager"],
        "delivery": {"email": "instant"}, "feed_token": "f33d"}


def site_config(**changes: Any) -> Config:
    data: dict[str, Any] = {"http": {"base_url": "https://notify.example.org/"},
                            "email": {"list_id": "notifications.example.org"}}
    data.update(changes)
    return config_from_dict(data)


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    """One renderer for all tests: it holds no state that rendering changes."""
    return Renderer(site_config(), secret=SECRET, backends=BACKENDS)


def render(renderer: Renderer, destination: str, rules: tuple[str, ...] = ("my-packages",),
           user: dict[str, Any] | None = None, timestamp: float = 1714560000,
           **changes: Any) -> Notification:
    described = described_message(**changes)
    return renderer.render(destination, described, envelope_for(described, timestamp),
                           user or USER, list(rules), "bob@example.org")
