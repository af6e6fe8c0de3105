"""The app: the stream, the notifications, the tray and the D-Bus interface, together.

Everything here runs on the main loop (:mod:`.mainloop`); the stream reader
and the API worker hand their results over with ``loop.post``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shlex
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dbus

from . import wake
from .api import Api, ApiError
from .config import DesktopConfig
from .icons import IconCache, cache_home
from .mainloop import MainLoop, Timer
from .notify import ICON_KEY, Notifier
from .service import DesktopInterface
from .stream import LastId, StreamReader, state_home
from .tray import Entry, Tray, TrayState

if TYPE_CHECKING:
    from .busmode import BusReader

log = logging.getLogger(__name__)

#: notifications in the tray's menu
RECENT = 10
#: notifications kept while "Do not disturb" is on, at most
MAX_COLLECTED = 1000
ICON_THEME = Path(__file__).resolve().parent / "data" / "icons"


def open_link(url: str) -> None:
    """Open ``url``: with the first command of ``$BROWSER`` that runs, else ``xdg-open``."""
    commands = [c for c in os.environ.get("BROWSER", "").split(":") if c.strip()]
    for command in commands + ["xdg-open"]:
        argv = shlex.split(command)
        argv = [a.replace("%s", url) for a in argv] if "%s" in command else argv + [url]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            continue
        threading.Thread(target=proc.wait, name="browser", daemon=True).start()  # reaped
        return
    log.warning("no browser to open %s: set $BROWSER, or install xdg-utils", url)


class App:
    """See the module docstring."""

    def __init__(self, config: DesktopConfig, bus: dbus.bus.BusConnection, loop: MainLoop, *,
                 opener: Callable[[str], None] = open_link):
        self.config = config
        self.bus = bus
        self.loop = loop
        self.opener = opener
        server = config.server
        self.enabled = True
        self.dnd = config.notifications.do_not_disturb
        self.connected = False
        self.unread = 0
        self.recent: deque[tuple[int, str, str | None]] = deque(maxlen=RECENT)
        self.collected: deque[dict[str, Any]] = deque(maxlen=MAX_COLLECTED)
        self._ids = itertools.count(1000)
        self.last_id = LastId(state_home() / "notifier" / "desktop.json",
                              f"{server.url} {server.user}")
        self.icons = IconCache(cache_home() / "notifier" / "icons",
                               config.notifications.icon_cache)
        self.api = (Api(server.url, server.api_token, loop.post)
                    if server.api_token and config.mode == "server" else None)
        self.notifier = Notifier(bus, config.notifications, opener=opener,
                                 on_mute=self.mute if self.api else None,
                                 open_url=server.open_url())
        self.interface = DesktopInterface(bus, self)
        self.tray = Tray(bus, on_activate=self.open_notifier, call_later=loop.call_later,
                         icon_theme_path=str(ICON_THEME))
        self.reader: StreamReader | BusReader | None = None
        self._counts_timer: Timer | None = None
        self._said_disconnected = False
        self._system_bus: dbus.bus.BusConnection | None = None

    # -- running ----------------------------------------------------------------------

    def start(self) -> None:
        self.refresh()
        self._start_reader()
        self.refresh_counts()
        self._system_bus = wake.watch(self.reconnect)

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.stop()
            self.reader = None
        if self.api is not None:
            self.api.close()

    def _start_reader(self) -> None:
        server = self.config.server
        reader: StreamReader | BusReader | None = None

        def on_event(event_id: int, payload: dict[str, Any]) -> None:
            icon = payload.get("icon")
            local = self.icons.path_for(icon if isinstance(icon, str) else None)  # off the loop
            self.loop.post(lambda: self.received(reader, event_id, payload, local))

        def on_mark(event_id: int) -> None:
            self.loop.post(lambda: reader is self.reader and self.last_id.save(event_id))

        def on_state(connected: bool, why: str) -> None:
            self.loop.post(lambda: self.connection(reader, connected, why))

        if self.config.mode == "bus":
            from .busmode import BusReader  # the service's describer: only in this mode

            reader = BusReader(self.config.bus, self.config.path, on_event=on_event,
                               on_state=on_state)
        else:
            reader = StreamReader(server.stream_url(), server.token, self.last_id.load(),
                                  on_event=on_event, on_mark=on_mark, on_state=on_state)
        self.reader = reader.start()

    def connection(self, reader: StreamReader | BusReader | None, connected: bool,
                   why: str) -> None:
        if reader is not self.reader:
            return
        if connected:
            log.info("connected to %s", self.source())
            self._said_disconnected = False
        elif not self._said_disconnected:
            log.warning("%s: not connected (%s); trying again", self.source(), why)
            self._said_disconnected = True
        if connected != self.connected:
            self.connected = connected
            self.refresh()

    def source(self) -> str:
        """Where notifications come from, for people to read."""
        if self.config.mode == "bus":
            return "the bus at " + ", ".join(self.config.bus.endpoints)
        return self.config.server.url

    def received(self, reader: StreamReader | BusReader | None, event_id: int,
                 payload: dict[str, Any], icon: str) -> None:
        """One notification from the stream: show it (or collect it), then note its id."""
        if reader is not self.reader:
            return  # from a reader stopped since: the next one reads it again
        summary = str(payload.get("summary") or payload.get("topic") or "notification")
        link = payload.get("link") if isinstance(payload.get("link"), str) else None
        self.recent.appendleft((next(self._ids), summary, link))
        self.unread += 1
        self.interface.NotificationReceived(str(payload.get("topic") or ""),
                                            json.dumps(payload, ensure_ascii=False))
        item = {**payload, ICON_KEY: icon}
        if self.dnd:
            self.collected.append(item)
        else:
            self.notifier.show(item)
        if self.config.mode == "server":  # the bus keeps no history to resume in
            self.last_id.save(event_id)
        self.refresh()
        self._counts_soon()

    # -- the tray ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Publish the tray's state and menu, and the interface's StatusChanged."""
        tooltip = f"{self.unread} unread notification{'s' if self.unread != 1 else ''}"
        if self.dnd:
            tooltip += f"; do not disturb ({len(self.collected)} waiting)"
        if not self.enabled:
            tooltip += "; disabled"
        elif not self.connected:
            tooltip += "; not connected"
        self.tray.update(TrayState(attention=self.unread > 0, tooltip=tooltip), self.entries())
        self.interface.status_changed()

    def entries(self) -> list[Entry]:
        out = [Entry(entry_id, label[:80], (lambda link=link: self.opener(link)) if link else None)
               for entry_id, label, link in self.recent]
        if not out:
            out.append(Entry(10, "No notifications yet"))
        return out + [
            Entry(1, separator=True),
            Entry(2, "Do not disturb", lambda: self.set_do_not_disturb(not self.dnd),
                  toggle=self.dnd),
            Entry(3, "Mark all read", self.mark_all_read),
            Entry(4, "Open notifier",
                  self.open_notifier if self.config.server.open_url() else None),
            Entry(5, separator=True),
            Entry(6, "Quit", self.quit),
        ]

    # -- what the menu and the interface do ---------------------------------------------

    def enable(self) -> None:
        if not self.enabled:
            self.enabled = True
            self._start_reader()
            self.refresh()

    def disable(self) -> None:
        if self.enabled:
            self.enabled = False
            if self.reader is not None:
                self.reader.stop()
            self.reader = None
            self.connected = False
            self.refresh()

    def reconnect(self) -> None:
        if self.reader is not None:
            self.reader.reconnect()

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "connected": self.connected, "mode": self.config.mode,
                "do_not_disturb": self.dnd, "unread": self.unread,
                "waiting": len(self.collected), "last_id": self.last_id.load() or 0,
                "tray": self.tray.registered, "daemon": self.notifier.daemon_present,
                "server": self.source()}

    def set_do_not_disturb(self, on: bool) -> None:
        self.dnd = on
        if not on:
            waiting, self.collected = list(self.collected), deque(maxlen=MAX_COLLECTED)
            for item in waiting:
                self.notifier.show(item)
        self.refresh()

    def mark_all_read(self) -> None:
        self.unread = 0
        self.refresh()
        if self.api is not None:
            self.api.submit(self.api.mark_all_read, self._counted)

    def open_notifier(self) -> None:
        url = self.config.server.open_url()
        if url:
            self.opener(url)

    def present(self) -> None:
        state = self.status()
        self.notifier.show_message(
            "notifier is running",
            f"{state['unread']} unread; " + ("connected to " if self.connected
                                             else "not connected to ") + str(state["server"]))

    def quit(self) -> None:
        self.loop.quit(0)

    def mute(self, rules: list[str]) -> None:
        api = self.api
        if api is None:
            return

        def work() -> list[str]:
            for rule in rules:
                api.mute(rule)
            return rules

        def done(result: Any, error: ApiError | None) -> None:
            if error is not None:
                log.warning("muting %s failed: %s", ", ".join(rules), error)
                self.notifier.show_message("Could not mute the rule", str(error))
            else:
                log.info("muted %s", ", ".join(rules))
                self.notifier.show_message(f"Muted {', '.join(rules)}",
                                           "Unmute it in the web app.")

        api.submit(work, done)

    # -- counts -------------------------------------------------------------------------

    def _counts_soon(self) -> None:
        if self.api is not None and self._counts_timer is None:
            self._counts_timer = self.loop.call_later(1.0, self.refresh_counts)

    def refresh_counts(self) -> None:
        self._counts_timer = None
        if self.api is not None:
            self.api.submit(self.api.counts, self._counted)

    def _counted(self, counts: Any, error: ApiError | None) -> None:
        if error is not None:
            log.info("the unread count is not known: %s", error)
            return
        if isinstance(counts, dict) and isinstance(counts.get("unread"), int):
            self.unread = counts["unread"]
            self.refresh()
