"""``notifier-desktop`` with a real notification daemon: Debian's ``dunst`` on ``Xvfb``.

What dunst received is read back with ``dunstctl history``, and a screenshot
of the screen with the notification on it is saved under
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for

from .conftest import Server
from .peers import App, Dunst, PrivateBus

pytestmark = pytest.mark.integration

#: the background of critical notifications in the test's dunstrc (see peers.Dunst)
CRITICAL_BACKGROUND = bytes.fromhex("7a1d1d")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


@pytest.fixture
def dunst(bus: PrivateBus, tmp_path: Path) -> Iterator[Dunst]:
    daemon = Dunst(bus, tmp_path)
    try:
        yield daemon
    finally:
        daemon.stop()


def test_dunst_shows_the_notification(server: Server, bus: PrivateBus, dunst: Dunst,
                                      make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    server.send("kernel 6.12 built", kind="alert", link="https://example.org/builds/6")
    wait_for(lambda: dunst.displayed() == 1, "dunst to show the notification",
             context=app.log)
    pixels = dunst.screenshot(SCREENSHOTS / "desktop-dunst-notification.png")
    # dunst draws critical notifications on the dark red of its [urgency_critical]
    assert pixels.count(CRITICAL_BACKGROUND) > 1000
    dunst.ctl("close-all")
    (entry,) = wait_for(lambda: dunst.history(), "the notification in dunst's history")
    assert entry["appname"] == "notifier-test"
    assert entry["summary"] == "desk: kernel 6.12 built"
    assert "https://example.org/builds/6" in entry["body"]
    assert entry["category"] == "x-notifier.error"
    assert entry["default_action_name"] == "default"
    assert entry["icon_path"].startswith(str(app.home / "cache" / "notifier" / "icons"))
