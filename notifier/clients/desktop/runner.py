"""Starting the app on the session bus: one instance per session."""

from __future__ import annotations

import logging

import dbus
import dbus.mainloop.glib

from .app import App
from .config import ConfigError, DesktopConfig
from .mainloop import MainLoop
from .service import ask_first_to_show, claim

log = logging.getLogger(__name__)


def run_app(config: DesktopConfig) -> int:
    """Run until quit; the exit status. A second start asks the first to show itself."""
    dbus.mainloop.glib.threads_init()
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    try:
        bus = dbus.SessionBus()
    except dbus.DBusException as exc:
        log.error("no D-Bus session bus (%s): run it in a graphical session",
                  exc.get_dbus_message())
        return 1
    name = claim(bus)
    if name is None:
        log.info("already running on this session: asked it to show itself")
        try:
            ask_first_to_show(bus)
        except dbus.DBusException as exc:
            log.warning("the running instance did not answer: %s", exc.get_dbus_message())
        return 0
    loop = MainLoop()
    try:
        app = App(config, bus, loop)
    except ConfigError as exc:  # a bus filter the rules' vocabulary refuses
        log.error("%s", exc)
        return 1
    app.start()
    log.info("running: notifications from %s", app.source())
    try:
        return loop.run()
    finally:
        app.stop()
