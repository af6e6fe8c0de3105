"""Showing notifications through ``org.freedesktop.Notifications`` (on the main loop).

* ``app_name`` is the configured one, the icon a local file from the icon
  cache (:mod:`.icons`);
* the body is markup as the service renders it; a daemon that does not list
  ``body-markup`` in ``GetCapabilities`` gets it with tags removed and
  entities decoded;
* ``urgency`` comes from the severity (debug low, error critical);
* the ``default`` action opens the link, ``mute`` ("Mute rule") mutes the
  rules that sent it, when the app can reach the API;
* over ``burst`` notifications within ``burst_window`` seconds collapse into
  one entry, "N new notifications", updated in place through its replace id;
* when the daemon is gone (restarting, say), what could not be shown waits
  and is shown when a daemon owns the name again.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dbus

from .config import NotificationSettings

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"
URGENCY = {"debug": 0, "info": 1, "warning": 1, "error": 2}
#: notifications waiting for a daemon, at most
MAX_WAITING = 100
#: notifications whose actions are remembered, at most
MAX_KNOWN = 256
#: the key under which the app puts the icon's local file into a stream item
ICON_KEY = "_icon_file"
_TAG = re.compile(r"<[^>]*>")
#: D-Bus errors that mean "no daemon right now"
_ABSENT = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NoReply",
           "org.freedesktop.DBus.Error.NameHasNoOwner", "org.freedesktop.DBus.Error.Disconnected",
           "org.freedesktop.DBus.Error.NoServer", "org.freedesktop.DBus.Error.Timeout"}


def plain_text(markup: str) -> str:
    """``markup`` with tags removed and entities decoded."""
    return html.unescape(_TAG.sub("", markup))


@dataclass
class Shown:
    """What the app remembers of a notification on screen: what its actions do."""

    link: str | None
    rules: list[str]
    burst: bool = False


@dataclass
class Burst:
    """The entry the notifications of a burst collapse into."""

    id: int = 0
    count: int = 0
    summaries: deque[str] = field(default_factory=lambda: deque(maxlen=3))


class Notifier:
    """Shows notifications on ``bus``; see the module docstring.

    ``item[ICON_KEY]`` is the icon's local file (see :mod:`.icons`); ``opener(url)``
    opens a link, ``on_mute(rules)`` mutes rules (None when the app cannot), ``open_url``
    is what a collapsed entry opens.
    """

    def __init__(self, bus: dbus.bus.BusConnection, settings: NotificationSettings, *,
                 opener: Callable[[str], None],
                 on_mute: Callable[[list[str]], None] | None, open_url: str,
                 clock: Callable[[], float] = time.monotonic):
        self.bus = bus
        self.settings = settings
        self.opener = opener
        self.on_mute = on_mute
        self.open_url = open_url
        self.clock = clock
        self._capabilities: frozenset[str] | None = None
        self._recent: deque[float] = deque()
        self._burst = Burst()
        self._known: OrderedDict[int, Shown] = OrderedDict()
        self._waiting: deque[dict[str, Any]] = deque(maxlen=MAX_WAITING)
        self.daemon_present = True
        bus.add_signal_receiver(self._on_action, "ActionInvoked", INTERFACE, None, OBJECT_PATH)
        bus.add_signal_receiver(self._on_closed, "NotificationClosed", INTERFACE, None,
                                OBJECT_PATH)
        bus.add_signal_receiver(self._on_owner, "NameOwnerChanged", "org.freedesktop.DBus",
                                "org.freedesktop.DBus", "/org/freedesktop/DBus", arg0=BUS_NAME)

    # -- showing ------------------------------------------------------------------

    def show(self, item: dict[str, Any]) -> None:
        """Show one notification of the stream (its JSON object), or collapse it in a burst."""
        now = self.clock()
        while self._recent and now - self._recent[0] > self.settings.burst_window:
            self._recent.popleft()
        if not self._recent:
            self._burst = Burst()
        self._recent.append(now)
        if len(self._recent) <= self.settings.burst:
            self._notify_item(item)
            return
        burst = self._burst
        burst.count += 1
        burst.summaries.append(str(item.get("summary") or ""))
        self._notify_burst()

    def _notify_item(self, item: dict[str, Any]) -> None:
        link = item.get("link") if isinstance(item.get("link"), str) else None
        if link and not link.startswith(("http://", "https://")):
            link = None
        rules = [str(r) for r in item.get("rules") or () if isinstance(r, str)]
        actions = []
        if link:
            actions += ["default", "Open"]
        if rules and self.on_mute is not None:
            actions += ["mute", "Mute rule"]
        severity = str(item.get("severity") or "info")
        hints = {"urgency": dbus.Byte(URGENCY.get(severity, 1)),
                 "desktop-entry": dbus.String("notifier-desktop"),
                 "category": dbus.String("x-notifier." + severity)}
        body = str(item.get("body") or "")
        notification_id = self._call(
            0, str(item.get(ICON_KEY) or ""),
            str(item.get("summary") or item.get("topic") or "notification"), body, actions,
            hints, raw=item)
        if notification_id:
            self._remember(notification_id, Shown(link, rules))

    def _notify_burst(self) -> None:
        burst = self._burst
        summary = f"{burst.count} new notifications"
        more = burst.count - len(burst.summaries)
        body = "\n".join(html.escape(s, quote=False) for s in burst.summaries)
        if more > 0:
            body = f"... and {more} more\n" + body
        hints = {"urgency": dbus.Byte(1), "desktop-entry": dbus.String("notifier-desktop")}
        notification_id = self._call(burst.id, "", summary, body, ["default", "Open"], hints,
                                     raw=None)
        if notification_id:
            burst.id = notification_id
            self._remember(notification_id, Shown(self.open_url, [], burst=True))

    def show_message(self, summary: str, body: str = "") -> None:
        """A notification of the app's own (not a message): no actions, normal urgency."""
        self._call(0, "", summary, html.escape(body, quote=False), [],
                   {"urgency": dbus.Byte(1)}, raw=None)

    def _call(self, replaces: int, icon: str, summary: str, body: str, actions: list[str],
              hints: dict[str, Any], raw: dict[str, Any] | None) -> int:
        try:
            if "body-markup" not in self.capabilities():
                body = plain_text(body)
            result = self.bus.call_blocking(
                BUS_NAME, OBJECT_PATH, INTERFACE, "Notify", "susssasa{sv}i",
                [self.settings.app_name, dbus.UInt32(replaces), icon, summary, body,
                 dbus.Array(actions, signature="s"), dbus.Dictionary(hints, signature="sv"),
                 dbus.Int32(self.settings.expire_timeout)], timeout=5)
        except dbus.DBusException as exc:
            name = exc.get_dbus_name() or ""
            if name not in _ABSENT and not name.startswith("org.freedesktop.DBus.Error.Spawn"):
                log.warning("the notification daemon refused a notification: %s: %s", name,
                            exc.get_dbus_message())
                return 0
            if self.daemon_present:
                log.warning("no notification daemon on the session bus (%s); notifications "
                            "wait until one starts", name)
            self.daemon_present = False
            self._capabilities = None
            if raw is not None:
                self._waiting.append(raw)
            return 0
        self.daemon_present = True
        return int(result)

    def capabilities(self) -> frozenset[str]:
        if self._capabilities is None:
            caps = self.bus.call_blocking(BUS_NAME, OBJECT_PATH, INTERFACE, "GetCapabilities",
                                          "", [], timeout=5)
            self._capabilities = frozenset(str(c) for c in caps)
        return self._capabilities

    def _remember(self, notification_id: int, shown: Shown) -> None:
        self._known[notification_id] = shown
        self._known.move_to_end(notification_id)
        while len(self._known) > MAX_KNOWN:
            self._known.popitem(last=False)

    # -- signals ---------------------------------------------------------------------

    def _on_action(self, notification_id: int, action: str) -> None:
        shown = self._known.get(int(notification_id))
        if shown is None:
            return  # another application's notification
        if action == "default" and shown.link:
            self.opener(shown.link)
        elif action == "mute" and shown.rules and self.on_mute is not None:
            self.on_mute(shown.rules)

    def _on_closed(self, notification_id: int, _reason: int) -> None:
        shown = self._known.pop(int(notification_id), None)
        if shown is not None and shown.burst and self._burst.id == int(notification_id):
            self._burst = Burst(count=self._burst.count, summaries=self._burst.summaries)

    def _on_owner(self, _name: str, _old: str, new: str) -> None:
        # A new daemon: its capabilities may differ, and the ids of the old one mean nothing.
        self._capabilities = None
        self._known.clear()
        self._burst = Burst(count=self._burst.count, summaries=self._burst.summaries)
        if new:
            self.daemon_present = True
            waiting, self._waiting = list(self._waiting), deque(maxlen=MAX_WAITING)
            if waiting:
                log.info("a notification daemon started: showing %d waiting notification(s)",
                         len(waiting))
            for item in waiting:
                self._notify_item(item)
