"""``notifier-desktop`` end to end: a real ``notifier serve``, a private session bus, and
python-dbusmock's notification daemon (which records every call, and clicks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for

from .conftest import Server, wait_calls
from .peers import App, MockDaemon, PrivateBus

pytestmark = pytest.mark.integration


def test_a_notification_shows_with_its_hints_and_its_link_opens(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    server.send("build one", link="https://example.org/builds/1")
    server.send("it broke", kind="alert", link="https://example.org/builds/2")
    calls = wait_calls(daemon, 2, "two notifications", app)
    print(calls)
    first, second = calls
    assert first["app_name"] == "notifier-test"
    assert "build one" in first["summary"]
    assert first["hints"]["urgency"] == 1
    assert second["hints"]["urgency"] == 2
    assert first["actions"][:2] == ["default", "Open"]
    assert "mute" in first["actions"]
    # the icon: fetched once into the cache, given as a local file
    assert first["app_icon"].startswith(str(app.home / "cache" / "notifier" / "icons"))
    assert Path(first["app_icon"]).read_bytes().startswith(b"\x89PNG")
    assert second["app_icon"] == first["app_icon"]
    assert len(server.icon_hits) == 1
    # a click on the first opens its link through $BROWSER
    ids = [c for c in daemon.calls()]
    assert ids
