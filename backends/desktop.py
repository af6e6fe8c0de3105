"""Desktop notifications through ``org.freedesktop.Notifications`` on a D-Bus session bus.

Each notification is one ``Notify`` call (signature ``susssasa{sv}i``):

* **app_name** is ``[dbus] app_name`` ("notifier" by default), not the
  message's application: notification servers file per-application settings
  (sound, do-not-disturb, history) under this name, so it must stay the same
  for every notification. The message's application is part of the summary
  the render stage writes.
* **app_icon** is ``notification.icon`` when it is an icon name, a file path
  or a ``file://`` URI; web addresses are left out, as servers cannot load
  them.
* **summary** and **body** come from ``content``. The body arrives escaped for
  markup; when the server does not list the ``body-markup`` capability, tags
  are stripped and entities decoded so the user does not see them raw.
* **actions** are ``["default", "Open"]`` when the notification has an
  ``http``/``https`` link. When the user clicks it, the server emits
  ``ActionInvoked`` and the link is handed to the opener (``xdg-open`` by
  default).
* **hints** carry ``urgency`` as a byte: 0 (low) for debug, 1 (normal) for
  info and warning, 2 (critical) for error.
* **expire_timeout** is ``[dbus] expire_timeout`` in milliseconds (-1 lets the
  server decide).

The bus is the ``bus_address`` given to the backend, else ``[dbus] address``
when the configuration has that key, else ``$DBUS_SESSION_BUS_ADDRESS``.
Which user's notifications reach this bus (``[dbus] user``) is decided before
the backend; it shows whatever it is given.
Signals are received on a thread that runs GLib's main context (see
:mod:`notifier.backends.glibloop`).

Errors: no notification server on the bus, a bus that is gone or a call that
times out raise :class:`~notifier.errors.TemporaryDeliveryError`; a server that
rejects the arguments (``InvalidArgs``) raises
:class:`~notifier.errors.PermanentDeliveryError`.
"""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import subprocess
import threading
import webbrowser
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

import dbus
import dbus.bus
import dbus.mainloop.glib

from ..config import Config
from ..errors import PermanentDeliveryError, TemporaryDeliveryError
from ..notification import Notification
from .base import Backend
from .glibloop import GLibThread

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"

#: urgency hint by severity: 0 low, 1 normal, 2 critical
URGENCY = {"debug": 0, "info": 1, "warning": 1, "error": 2}

#: D-Bus errors that retrying will not fix
PERMANENT_ERRORS = {
    "org.freedesktop.DBus.Error.InvalidArgs",
    "org.freedesktop.DBus.Error.InvalidSignature",
}

#: links kept for notifications that may still be clicked
_MAX_LINKS = 512
_TAG = re.compile(r"<[^>]*>")


def open_link(url: str) -> None:
    """Open ``url`` in the user's browser, without waiting for it."""
    if shutil.which("xdg-open"):
        proc = subprocess.Popen(["xdg-open", url], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        # Reap it when it exits, so it leaves no zombie behind.
        threading.Thread(target=proc.wait, name="xdg-open", daemon=True).start()
    else:
        webbrowser.open(url)


def plain_text(markup: str) -> str:
    """``markup`` with tags removed and entities decoded."""
    return html.unescape(_TAG.sub("", markup))


def _web_link(link: str | None) -> str | None:
    if link and urlsplit(link).scheme in ("http", "https"):
        return link
    return None


def _icon(icon: str | None) -> str:
    if not icon or urlsplit(icon).scheme in ("http", "https"):
        return ""
    return icon


class DesktopBackend(Backend):
    """Shows notifications on a desktop through its notification server.

    ``bus_address`` picks the session bus (see the module docstring);
    ``opener`` receives the link of a clicked notification;
    ``call_timeout`` bounds each D-Bus call, in seconds.
    """

    name = "desktop"
    max_length = None
    single_line = False
    markup = "pango"

    def __init__(self, config: Config, *, bus_address: str | None = None,
                 opener: Callable[[str], object] = open_link, call_timeout: float = 5.0):
        super().__init__(config)
        self.settings = config.dbus
        self._bus_address = bus_address
        self.opener = opener
        self.call_timeout = call_timeout
        self._lock = threading.Lock()
        self._bus: dbus.bus.BusConnection | None = None
        self._address: str | None = None
        self._loop: GLibThread | None = None
        self._capabilities: frozenset[str] | None = None
        self._links: OrderedDict[int, str] = OrderedDict()
        self._links_lock = threading.Lock()

    # -- public API -------------------------------------------------------

    def bus_address(self) -> str | None:
        """The address of the bus this backend uses, or None when none is known."""
        return (self._bus_address or getattr(self.settings, "address", None)
                or os.environ.get("DBUS_SESSION_BUS_ADDRESS"))

    def setup(self) -> None:
        """Connect to the session bus; a missing bus raises TemporaryDeliveryError."""
        with self._lock:
            self._connect()

    def send(self, notification: Notification) -> None:
        """Show one notification; see the module docstring for the arguments."""
        summary = notification.content.get("summary")
        if not summary:
            raise PermanentDeliveryError(f"notification {notification.msg_id} for desktop "
                                         "has no content['summary'] to show")
        body = notification.content.get("body", "")
        link = _web_link(notification.link)
        urgency = URGENCY.get(notification.severity, 1)
        with self._lock:
            bus = self._connect()
            caps = self._server_capabilities(bus)
            if "body-markup" not in caps:
                body = plain_text(body)
            args = [
                self.settings.app_name,
                dbus.UInt32(0),
                _icon(notification.icon),
                summary,
                body,
                dbus.Array(["default", "Open"] if link else [], signature="s"),
                dbus.Dictionary({"urgency": dbus.Byte(urgency)}, signature="sv"),
                dbus.Int32(self.settings.expire_timeout),
            ]
            notification_id = int(self._call(bus, "Notify", NOTIFY_SIGNATURE, args,
                                              f"showing notification {notification.msg_id}"))
        if link:
            with self._links_lock:
                self._links[notification_id] = link
                while len(self._links) > _MAX_LINKS:
                    self._links.popitem(last=False)

    def close(self) -> None:
        """Leave the bus and stop listening for clicks; a later send connects again."""
        with self._lock:
            self._disconnect()

    # -- the bus ----------------------------------------------------------

    def _connect(self) -> dbus.bus.BusConnection:
        if self._bus is not None:
            return self._bus
        address = self.bus_address()
        if not address:
            raise TemporaryDeliveryError(
                "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set and no bus "
                "address is configured") from KeyError("DBUS_SESSION_BUS_ADDRESS")
        # dbus-glib must know threads are in use before a second thread touches it.
        dbus.mainloop.glib.threads_init()
        try:
            bus = dbus.bus.BusConnection(address,
                                         mainloop=dbus.mainloop.glib.DBusGMainLoop())
        except dbus.DBusException as exc:
            raise TemporaryDeliveryError(
                f"cannot connect to the D-Bus session bus at {address}: "
                f"{exc.get_dbus_message() or exc.get_dbus_name()}") from exc
        for signal, handler in (("ActionInvoked", self._on_action),
                                ("NotificationClosed", self._on_closed)):
            bus.add_signal_receiver(handler, signal_name=signal, dbus_interface=INTERFACE,
                                    path=OBJECT_PATH)
        # The loop starts once the connection is attached: libdbus aborted the process
        # (rarely) when the context was iterated while the connection was being set up.
        if self._loop is None:
            self._loop = GLibThread(name="desktop notifications").start()
        self._bus, self._address, self._capabilities = bus, address, None
        return bus

    def _disconnect(self) -> None:
        bus, self._bus, self._capabilities = self._bus, None, None
        if bus is not None:
            try:
                bus.close()
            except dbus.DBusException as exc:  # already gone: nothing left to release
                log.debug("closing the D-Bus connection: %s", exc)
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def _server_capabilities(self, bus: dbus.bus.BusConnection) -> frozenset[str]:
        if self._capabilities is None:
            caps = self._call(bus, "GetCapabilities", "", [], "asking for capabilities")
            self._capabilities = frozenset(str(c) for c in caps)
        return self._capabilities

    def _call(self, bus: dbus.bus.BusConnection, method: str, signature: str,
              args: list[object], doing: str) -> object:
        try:
            return bus.call_blocking(BUS_NAME, OBJECT_PATH, INTERFACE, method, signature,
                                     args, timeout=self.call_timeout)
        except dbus.DBusException as exc:
            name = exc.get_dbus_name() or type(exc).__name__
            message = (f"{doing} on the D-Bus session bus at {self._address}: {name}: "
                       f"{exc.get_dbus_message() or exc}")
            if name in PERMANENT_ERRORS:
                raise PermanentDeliveryError(f"the notification server refused {message}") \
                    from exc
            if name == "org.freedesktop.DBus.Error.ServiceUnknown":
                message = f"no notification server ({BUS_NAME}) while {message}"
            else:
                # The bus itself may be gone; connect afresh next time.
                self._disconnect()
            raise TemporaryDeliveryError(message) from exc

    # -- signals (run on the GLib thread) -------------------------------

    def _on_action(self, notification_id: int, action: str) -> None:
        if action != "default":
            return
        with self._links_lock:
            link = self._links.get(int(notification_id))
        if link is None:
            return
        try:
            self.opener(link)
        except Exception:  # a failing browser must not stop click handling
            log.exception("opening %s for notification %s failed", link, notification_id)

    def _on_closed(self, notification_id: int, reason: int) -> None:
        with self._links_lock:
            self._links.pop(int(notification_id), None)
