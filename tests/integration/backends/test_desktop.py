"""The desktop backend against a private session bus and dbusmock's notification server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import dbus
import pytest

from notifier.backends.desktop import DesktopBackend, plain_text
from notifier.config import config_from_dict
from notifier.errors import PermanentDeliveryError, TemporaryDeliveryError
from notifier.notification import Notification

from .peers_dbus import DbusSession

pytestmark = pytest.mark.integration

LINK = "https://bodhi.example.org/updates/FEDORA-2025-1"


def note(summary: str = "bodhi: update pushed", body: str = "<b>FEDORA-2025-1</b> &amp; more",
         *, link: str | None = LINK, icon: str | None = "software-update-available",
         severity: str = "info") -> Notification:
    return Notification(user="alice", destination="desktop", address="alice",
                        msg_id="2025-1", topic="org.fedoraproject.dev.bodhi.update.request",
                        app="bodhi", content={"summary": summary, "body": body}, link=link,
                        icon=icon, severity=severity)


def make(session: DbusSession | None, **kwargs: object) -> DesktopBackend:
    config = config_from_dict({"dbus": {"app_name": "notifier-test", "expire_timeout": 7000}})
    if session is not None:
        kwargs.setdefault("bus_address", session.address)
    return DesktopBackend(config, **kwargs)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[DbusSession]:
    bus = DbusSession(tmp_path / "dbus").start()
    yield bus
    bus.stop()


@pytest.fixture
def plain_session(tmp_path: Path) -> Iterator[DbusSession]:
    """A notification server without the body-markup capability."""
    bus = DbusSession(tmp_path / "dbus-plain", capabilities=["body", "actions"]).start()
    yield bus
    bus.stop()


class Opened:
    """An opener that records the links it gets."""

    def __init__(self) -> None:
        self.links: list[str] = []
        self.event = threading.Event()

    def __call__(self, link: str) -> None:
        self.links.append(link)
        self.event.set()


def test_notify_gets_every_argument(session):
    with make(session) as backend:
        backend.send(note())
    [call] = session.notify_calls()
    assert call == {
        "app_name": "notifier-test",
        "replaces_id": 0,
        "app_icon": "software-update-available",
        "summary": "bodhi: update pushed",
        "body": "<b>FEDORA-2025-1</b> &amp; more",
        "actions": ["default", "Open"],
        "hints": {"urgency": 1},
        "expire_timeout": 7000,
    }


@pytest.mark.parametrize(("severity", "urgency"),
                         [("debug", 0), ("info", 1), ("warning", 1), ("error", 2)])
def test_urgency_follows_severity(session, severity, urgency):
    with make(session) as backend:
        backend.send(note(severity=severity))
    [call] = session.notify_calls()
    assert call["hints"] == {"urgency": urgency}
    assert type(call["hints"]["urgency"]) is int


def test_urgency_is_sent_as_a_byte(session):
    with make(session) as backend:
        backend.send(note(severity="error"))
    [(_, args)] = session.client().call_blocking(
        "org.freedesktop.Notifications", "/org/freedesktop/Notifications",
        "org.freedesktop.DBus.Mock", "GetMethodCalls", "s", ["Notify"])
    assert isinstance(args[6]["urgency"], dbus.Byte)


def test_no_web_link_means_no_action_and_web_icons_are_dropped(session):
    with make(session) as backend:
        backend.send(note(link=None, icon="https://apps.example.org/bodhi.png"))
        backend.send(note(link="file:///etc/passwd", icon="/usr/share/icons/bodhi.png"))
    first, second = session.notify_calls()
    assert (first["actions"], first["app_icon"]) == ([], "")
    assert (second["actions"], second["app_icon"]) == ([], "/usr/share/icons/bodhi.png")


def test_server_without_body_markup_gets_plain_text(plain_session):
    with make(plain_session) as backend:
        backend.send(note(body='<b>bold</b> &lt;tag&gt; &amp; <a href="https://x">link</a>'))
    [call] = plain_session.notify_calls()
    assert call["body"] == "bold <tag> & link"


def test_plain_text_strips_tags_and_decodes_entities():
    assert plain_text("<i>a</i>&#39;s &quot;b&quot;") == "a's \"b\""


def test_click_opens_the_link(session):
    opened = Opened()
    with make(session, opener=opened) as backend:
        backend.send(note(link=None))
        backend.send(note(link=LINK))
        # ids are 1 and 2; only the second has a link
        session.emit("ActionInvoked", "us", dbus.UInt32(1), "default")
        session.emit("ActionInvoked", "us", dbus.UInt32(2), "something-else")
        session.emit("ActionInvoked", "us", dbus.UInt32(2), "default")
        assert opened.event.wait(5)
    assert opened.links == [LINK]


def test_closed_notification_forgets_its_link(session):
    opened = Opened()
    with make(session, opener=opened) as backend:
        backend.send(note(link="https://example.org/first"))
        backend.send(note(link="https://example.org/second"))
        session.emit("NotificationClosed", "uu", dbus.UInt32(1), dbus.UInt32(2))
        session.emit("ActionInvoked", "us", dbus.UInt32(1), "default")
        session.emit("ActionInvoked", "us", dbus.UInt32(2), "default")
        assert opened.event.wait(5)
    # Signals arrive in order, so the first click was already ignored.
    assert opened.links == ["https://example.org/second"]


def test_no_notification_server_is_temporary(session):
    with make(session) as backend:
        session.stop_server()
        with pytest.raises(TemporaryDeliveryError, match="no notification server") as info:
            backend.send(note())
    assert isinstance(info.value.__cause__, dbus.DBusException)
    assert info.value.__cause__.get_dbus_name() == "org.freedesktop.DBus.Error.ServiceUnknown"


def test_invalid_args_is_permanent(session):
    with make(session) as backend:
        backend.send(note())
        # The server now rejects what it gets, as a strict server does with a bad hint.
        session.client().call_blocking(
            "org.freedesktop.Notifications", "/org/freedesktop/Notifications",
            "org.freedesktop.DBus.Mock", "AddMethod", "sssss",
            ["org.freedesktop.Notifications", "Notify", "susssasa{sv}i", "u",
             "raise dbus.exceptions.DBusException('bad urgency', "
             "name='org.freedesktop.DBus.Error.InvalidArgs')"])
        with pytest.raises(PermanentDeliveryError, match="InvalidArgs.*bad urgency") as info:
            backend.send(note())
    assert isinstance(info.value.__cause__, dbus.DBusException)


def test_bus_gone_is_temporary_then_reconnects(tmp_path):
    first = DbusSession(tmp_path / "one").start()
    second = DbusSession(tmp_path / "two").start()
    try:
        backend = make(first)
        with backend:
            backend.send(note(summary="on the first bus"))
            first.stop()
            with pytest.raises(TemporaryDeliveryError, match="Disconnected") as info:
                backend.send(note())
            assert isinstance(info.value.__cause__, dbus.DBusException)
            with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
                backend.send(note())
            # a new session on a new bus, as after logging in again
            backend._bus_address = second.address
            backend.send(note(summary="on the second bus"))
        assert [c["summary"] for c in second.notify_calls()] == ["on the second bus"]
    finally:
        first.stop()
        second.stop()


def test_bus_address_comes_from_the_environment(session, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session.address)
    with make(None) as backend:
        backend.send(note(summary="via the environment"))
    assert [c["summary"] for c in session.notify_calls()] == ["via the environment"]


def test_explicit_address_wins_over_the_environment(session, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    with make(session) as backend:
        backend.send(note(summary="explicit"))
    assert [c["summary"] for c in session.notify_calls()] == ["explicit"]


def test_no_bus_at_all_is_temporary(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    backend = make(None)
    with pytest.raises(TemporaryDeliveryError, match="DBUS_SESSION_BUS_ADDRESS is not set"):
        backend.send(note())
    backend.close()


def test_missing_summary_is_permanent(session):
    with make(session) as backend:
        with pytest.raises(PermanentDeliveryError, match="summary"):
            backend.send(note(summary=""))
    assert session.notify_calls() == []


def test_close_stops_the_signal_thread(session):
    before = {t for t in threading.enumerate() if t.name == "desktop notifications"}
    backend = make(session)
    backend.setup()
    backend.send(note())
    assert {t for t in threading.enumerate() if t.name == "desktop notifications"} - before
    backend.close()
    backend.close()
    assert not {t for t in threading.enumerate()
                if t.name == "desktop notifications" and t.is_alive()} - before
