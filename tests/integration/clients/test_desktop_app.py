"""``notifier-desktop`` end to end: a real ``notifier serve``, a private session bus, and
python-dbusmock's notification daemon (which records every call, and clicks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dbus
import dbus.lowlevel
import pytest

from tests.conftest import wait_for

from .conftest import Server, wait_calls
from .peers import App, MockDaemon, Monitor, PrivateBus, assigned_ids

pytestmark = pytest.mark.integration


def summaries(daemon: MockDaemon) -> list[str]:
    return [c["summary"] for c in daemon.calls()]


def test_a_notification_shows_with_its_hints_and_its_actions_work(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any,
        tmp_path: Path) -> None:
    monitor = Monitor(bus, tmp_path)
    try:
        app: App = make_app(server.config()).start()
        server.send("build one", link="https://example.org/builds/1")
        server.send("it broke", kind="alert", link="https://example.org/builds/2")
        first, second = wait_calls(daemon, 2, "two notifications", app)
        wait_for(lambda: monitor.text().count("member=NotificationReceived") == 2,
                 "two NotificationReceived signals")
        signals = monitor.text()
    finally:
        monitor.stop()
    assert first["app_name"] == second["app_name"] == "notifier-test"
    assert first["summary"] == "desk: build one"
    assert second["summary"] == "desk: it broke"
    # the service's markup, as the daemon lists body-markup
    assert '<a href="https://example.org/builds/1">' in first["body"]
    assert (first["hints"]["urgency"], second["hints"]["urgency"]) == (1, 2)
    assert first["hints"]["desktop-entry"] == "notifier-desktop"
    assert first["actions"] == ["default", "Open", "mute", "Mute rule"]
    assert first["replaces_id"] == second["replaces_id"] == 0
    # the icon: fetched once into the bounded cache under $XDG_CACHE_HOME, a local file
    assert first["app_icon"].startswith(str(app.home / "cache" / "notifier" / "icons") + "/")
    assert Path(first["app_icon"]).read_bytes().startswith(b"\x89PNG")
    assert second["app_icon"] == first["app_icon"]
    assert server.icon_hits == ["/icon.png"]
    # the signal carries the topic and the JSON of each
    assert "org.fedoraproject.dev.desk.thing" in signals and '\\"summary\\"' not in signals
    assert '"summary":"desk: build one"' in signals.replace(" ", "") or \
        "desk: build one" in signals

    # the default action opens the link, through $BROWSER
    one, two = assigned_ids(daemon.calls())
    daemon.click(one)
    wait_for(lambda: app.opened_links() == ["https://example.org/builds/1"],
             "the link to be opened", context=app.log)
    # "Mute rule" mutes the rule that sent it, through the API
    daemon.click(two, "mute")
    with server.api() as api:
        wait_for(lambda: api.get("/rules/desk").json()["disabled"] is True,
                 "the rule to be muted", context=app.log)
    wait_for(lambda: "Muted desk" in summaries(daemon), "the app to say it muted the rule")


def test_without_body_markup_the_body_is_plain_text(
        server: Server, bus: PrivateBus, tmp_path: Path, make_app: Any) -> None:
    daemon = MockDaemon(bus, tmp_path).start(capabilities=["actions", "body"])
    try:
        app: App = make_app(server.config()).start()
        server.send("a <b>bold</b> & plain", link="https://example.org/x?a=1&b=2")
        (call,) = wait_calls(daemon, 1, "the notification", app)
    finally:
        daemon.stop()
    assert "<a" not in call["body"] and "&amp;" not in call["body"]
    assert "https://example.org/x?a=1&b=2" in call["body"]


def test_resume_after_the_server_restarts_and_after_the_app_restarts(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    server.send("one")
    wait_calls(daemon, 1, "the first", app)
    server.serve.stop()
    wait_for(lambda: not app.status()["connected"], "the app to see the server gone")
    server.serve.start()
    server.send("two")  # recorded before the app has reconnected: it comes by Last-Event-ID
    wait_for(lambda: app.status()["connected"], "the app to reconnect", context=app.log)
    server.send("three")
    wait_calls(daemon, 3, "two more after the restart", app)
    # The app stops; what arrives meanwhile is shown when it starts again, and only that.
    assert app.stop() == 0
    server.send("four")
    server.send("five")
    with server.api() as api:
        wait_for(lambda: api.get("/notifications/counts").json()["total"] >= 5,
                 "the service to record both")
    app.start()
    wait_calls(daemon, 5, "the two sent while the app was stopped", app)
    server.send("six")
    wait_calls(daemon, 6, "one more", app)
    assert summaries(daemon) == [f"desk: {n}" for n in
                                 ("one", "two", "three", "four", "five", "six")]


def test_a_burst_collapses_into_one_entry(server: Server, bus: PrivateBus,
                                          daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config(burst=3, burst_window=30)).start()
    for n in range(8):
        server.send(f"burst {n}")
    wait_for(lambda: any(c["summary"] == "5 new notifications" for c in daemon.calls()),
             "the burst entry to count five", context=app.log)
    calls = daemon.calls()
    assert [c["summary"] for c in calls[:3]] == [f"desk: burst {n}" for n in range(3)]
    collapsed = calls[3:]
    assert [c["summary"] for c in collapsed] == [f"{n} new notifications" for n in range(1, 6)]
    entry = assigned_ids(calls)[3]
    assert collapsed[0]["replaces_id"] == 0
    assert all(c["replaces_id"] == entry for c in collapsed[1:])
    assert "desk: burst 7" in collapsed[-1]["body"]
    assert len(assigned_ids(calls)) == 8 and len(set(assigned_ids(calls))) == 4


def test_the_interface_enable_disable_status_and_one_instance(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    status = app.status()
    assert status["enabled"] is True and status["connected"] is True
    assert status["mode"] == "server" and status["do_not_disturb"] is False
    app.call("Disable")
    assert app.status()["enabled"] is False
    server.send("while disabled")
    with server.api() as api:
        wait_for(lambda: api.get("/notifications/counts").json()["total"] >= 1,
                 "the service to record it")
    assert daemon.calls() == []
    app.call("Enable")
    wait_calls(daemon, 1, "what came while disabled, once enabled", app)
    # Reconnect() drops the open connection and resumes after the last id: nothing twice
    connections = app.log().count("connected to http")
    app.call("Reconnect")
    wait_for(lambda: app.log().count("connected to http") > connections
             and app.status()["connected"], "the app to connect again", context=app.log)
    server.send("after reconnecting")
    wait_calls(daemon, 2, "the next one", app)
    assert summaries(daemon) == ["desk: while disabled", "desk: after reconnecting"]
    # a second start asks the first to show itself, and exits 0
    second = app.run("-v")
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stderr
    wait_for(lambda: "notifier is running" in summaries(daemon), "the first to show itself")
    assert app.proc is not None and app.proc.poll() is None


def test_do_not_disturb_collects_and_shows_afterwards(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    app.call("SetDoNotDisturb", "b", True)
    server.send("quiet one")
    server.send("quiet two")
    wait_for(lambda: app.status()["waiting"] == 2, "two collected", context=app.log)
    assert daemon.calls() == []
    app.call("SetDoNotDisturb", "b", False)
    wait_calls(daemon, 2, "the collected ones", app)
    assert summaries(daemon) == ["desk: quiet one", "desk: quiet two"]


def test_the_notification_daemon_restarting(server: Server, bus: PrivateBus,
                                            daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config()).start()
    server.send("before")
    wait_calls(daemon, 1, "the first", app)
    daemon.stop()
    server.send("meanwhile")
    wait_for(lambda: app.status()["daemon"] is False, "the app to miss the daemon",
             context=app.log)
    daemon.start()
    wait_calls(daemon, 1, "the waiting one on the new daemon", app)
    server.send("after")
    wait_calls(daemon, 2, "the next one", app)
    assert summaries(daemon) == ["desk: meanwhile", "desk: after"]


def test_the_network_returning_reconnects_at_once(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any,
        tmp_path: Path) -> None:
    system = PrivateBus(tmp_path / "system")  # stands in for the system bus
    try:
        app: App = make_app(server.config())
        app.env["DBUS_SYSTEM_BUS_ADDRESS"] = system.address
        app.start()
        server.serve.stop()
        # the back-off grows: once the app waits 8 s, the network "returns"
        wait_for(lambda: "trying again in 8 s" in app.log(), "the back-off to reach 8 s",
                 context=app.log)
        server.serve.start()
        message = dbus.lowlevel.SignalMessage("/org/freedesktop/NetworkManager",
                                              "org.freedesktop.NetworkManager", "StateChanged")
        message.append(dbus.UInt32(70), signature="u")
        system.client().send_message(message)
        wait_for(lambda: app.status()["connected"], "the app to connect at once", 4,
                 context=app.log)
        assert "the network is back" in app.log()
    finally:
        system.close()


def test_after_the_burst_window_notifications_show_one_by_one_again(
        server: Server, bus: PrivateBus, daemon: MockDaemon, make_app: Any) -> None:
    app: App = make_app(server.config(burst=1, burst_window=1)).start()
    server.send("first")
    server.send("second")
    wait_for(lambda: "1 new notifications" in summaries(daemon), "the second to collapse",
             context=app.log)
    collapsed_seen = time.monotonic()
    # the window is counted from the app's last notification, received before that moment
    wait_for(lambda: time.monotonic() > collapsed_seen + 1.2, "the window to pass")
    server.send("third")
    wait_calls(daemon, 3, "the third", app)
    assert summaries(daemon) == ["desk: first", "1 new notifications", "desk: third"]
    assert daemon.calls()[2]["replaces_id"] == 0
