"""The tray icon of ``notifier-desktop`` with Debian's ``status-notifier-watcher``: its
registration, properties and menu, a click on each entry, and the watcher restarting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dbus
import pytest

from tests.conftest import wait_for

from .conftest import Server, wait_calls
from .peers import App, MockDaemon, PrivateBus, Watcher

pytestmark = pytest.mark.integration

ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"


@pytest.fixture
def watcher(bus: PrivateBus, tmp_path: Path) -> Any:
    started = Watcher(bus, tmp_path).start()
    try:
        yield started
    finally:
        if started.proc is not None:
            started.stop()


def item_name(watcher: Watcher, app: App) -> str:
    assert app.proc is not None
    want = f"{ITEM}-{app.proc.pid}-1"
    wait_for(lambda: any(want in i for i in watcher.items()), "the item to register",
             context=app.log)
    return want


def prop(bus: PrivateBus, name: str, key: str) -> Any:
    return bus.get(name, "/StatusNotifierItem", ITEM, key)


def layout(bus: PrivateBus, name: str) -> list[tuple[int, dict[str, Any]]]:
    revision, (root, props, children) = bus.call(name, "/MenuBar", MENU, "GetLayout", "iias",
                                                  0, -1, dbus.Array([], signature="s"))
    assert root == 0 and props["children-display"] == "submenu"
    return [(child[0], child[1]) for child in children]


def labels(bus: PrivateBus, name: str) -> list[str]:
    return [p.get("label", "---" if p.get("type") == "separator" else "")
            for _, p in layout(bus, name)]


def click(bus: PrivateBus, name: str, label: str) -> None:
    (entry_id,) = [i for i, p in layout(bus, name) if p.get("label") == label]
    bus.call(name, "/MenuBar", MENU, "Event", "isvu", entry_id, "clicked",
             dbus.String("", variant_level=1), dbus.UInt32(0))


def test_the_item_registers_with_its_properties_and_menu(
        server: Server, bus: PrivateBus, daemon: MockDaemon, watcher: Watcher,
        make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    name = item_name(watcher, app)
    assert prop(bus, name, "Status") == "Active"
    assert prop(bus, name, "IconName") == "notifier-desktop"
    assert prop(bus, name, "Menu") == "/MenuBar"
    assert prop(bus, name, "Category") == "Communications"
    assert prop(bus, name, "ToolTip")[3] == "0 unread notifications"
    assert labels(bus, name) == ["No notifications yet", "---", "Do not disturb",
                                 "Mark all read", "Open notifier", "---", "Quit"]
    assert bus.get(name, "/MenuBar", MENU, "Version") == 3

    server.send("first", link="https://example.org/1")
    server.send("second", link="https://example.org/2")
    wait_calls(daemon, 2, "two notifications", app)
    wait_for(lambda: prop(bus, name, "Status") == "NeedsAttention", "the icon to ask for "
             "attention", context=app.log)
    wait_for(lambda: prop(bus, name, "ToolTip")[3].startswith("2 unread notifications"),
             "the tooltip to count two", context=app.log)
    assert labels(bus, name)[:3] == ["desk: second", "desk: first", "---"]

    # a click on a notification opens its link
    click(bus, name, "desk: first")
    wait_for(lambda: app.opened_links() == ["https://example.org/1"], "the link to open")
    # "Open notifier" opens the web app
    click(bus, name, "Open notifier")
    wait_for(lambda: app.opened_links()[1:] == [f"{server.url}/"], "the web app to open")
    # "Do not disturb" is a check box
    toggle = [p for _, p in layout(bus, name) if p.get("label") == "Do not disturb"][0]
    assert toggle["toggle-type"] == "checkmark" and toggle["toggle-state"] == 0
    click(bus, name, "Do not disturb")
    wait_for(lambda: app.status()["do_not_disturb"] is True, "do not disturb on")
    toggle = [p for _, p in layout(bus, name) if p.get("label") == "Do not disturb"][0]
    assert toggle["toggle-state"] == 1
    server.send("third")
    wait_for(lambda: app.status()["waiting"] == 1, "the third to be collected")
    assert len(daemon.calls()) == 2
    click(bus, name, "Do not disturb")
    wait_calls(daemon, 3, "the collected one, shown afterwards", app)
    # "Mark all read": through the API; the icon is back to Active
    click(bus, name, "Mark all read")
    with server.api() as api:
        wait_for(lambda: api.get("/notifications/counts").json()["unread"] == 0,
                 "everything read on the server", context=app.log)
    wait_for(lambda: prop(bus, name, "Status") == "Active", "the icon to calm down",
             context=app.log)
    assert prop(bus, name, "ToolTip")[3].startswith("0 unread notifications")
    # "Quit"
    click(bus, name, "Quit")
    assert app.proc is not None
    wait_for(lambda: app.proc is not None and app.proc.poll() is not None, "the app to quit")
    assert app.proc.returncode == 0


def test_registered_again_when_the_watcher_restarts(
        server: Server, bus: PrivateBus, daemon: MockDaemon, watcher: Watcher,
        make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    name = item_name(watcher, app)
    watcher.stop()
    assert app.status()["tray"] is False
    watcher.start()
    assert item_name(watcher, app) == name
    wait_for(lambda: app.status()["tray"] is True, "the app to know it is registered")


def test_without_a_watcher_it_runs_without_an_icon_and_says_so_once(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any,
        tmp_path: Path) -> None:
    app: App = make_app(server.config()).start()
    server.send("no tray")
    wait_calls(daemon, 1, "the notification, tray or not", app)
    assert app.status()["tray"] is False
    assert app.log().count("running without a tray icon") == 1
    # a watcher that starts later gets the icon
    later = Watcher(bus, tmp_path).start()
    try:
        item_name(later, app)
    finally:
        later.stop()
