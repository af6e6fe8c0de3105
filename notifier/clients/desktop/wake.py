"""Connecting again at once when the network returns or the machine wakes up.

On the system bus, NetworkManager's ``StateChanged`` to "connected" and
logind's ``PrepareForSleep(false)`` (the machine woke up) call ``reconnect``,
so the stream does not wait out its back-off (or a connection that died in
sleep). Without a system bus, or without those services, nothing is watched
and reconnecting keeps its back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dbus

log = logging.getLogger(__name__)

#: NetworkManager's NM_STATE_CONNECTED_GLOBAL
CONNECTED_GLOBAL = 70


def watch(reconnect: Callable[[], None]) -> dbus.bus.BusConnection | None:
    """Watch the system bus; the connection (keep it), or None without a system bus."""
    try:
        system = dbus.SystemBus()
    except dbus.DBusException as exc:
        log.debug("no system bus (%s): not watching the network", exc.get_dbus_message())
        return None

    def network(state: int) -> None:
        if int(state) == CONNECTED_GLOBAL:
            log.info("the network is back: connecting again")
            reconnect()

    def sleep(going: bool) -> None:
        if not going:
            log.info("awake again: connecting again")
            reconnect()

    system.add_signal_receiver(network, "StateChanged", "org.freedesktop.NetworkManager",
                               None, "/org/freedesktop/NetworkManager")
    system.add_signal_receiver(sleep, "PrepareForSleep", "org.freedesktop.login1.Manager",
                               None, "/org/freedesktop/login1")
    return system
