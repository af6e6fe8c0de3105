"""``org.fedoraproject.notifier.Desktop``: the app's own interface, for shell extensions and
scripts.

Methods: ``Enable()`` and ``Disable()`` (listen to the source or not; on
enabling, the stream resumes where it stopped), ``Status() -> a{sv}``,
``SetDoNotDisturb(b)``, ``MarkAllRead()``, ``Show()`` (what a second start
of the app calls: a notification with the app's state), ``Reconnect()``
(connect again now, after network loss) and ``Quit()``. Signals:
``NotificationReceived(s topic, s json)`` for each notification received,
shown or not, and ``StatusChanged(a{sv})``.
"""

from __future__ import annotations

from typing import Any, Protocol

import dbus
import dbus.service

BUS_NAME = "org.fedoraproject.notifier.Desktop"
OBJECT_PATH = "/org/fedoraproject/notifier/Desktop"
INTERFACE = "org.fedoraproject.notifier.Desktop"


class Controls(Protocol):
    """What the interface drives (the app)."""

    def enable(self) -> None: ...
    def disable(self) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def set_do_not_disturb(self, on: bool) -> None: ...
    def mark_all_read(self) -> None: ...
    def present(self) -> None: ...
    def reconnect(self) -> None: ...
    def quit(self) -> None: ...


def claim(bus: dbus.bus.BusConnection) -> dbus.service.BusName | None:
    """Own :data:`BUS_NAME`; None when another instance owns it already."""
    try:
        return dbus.service.BusName(BUS_NAME, bus, do_not_queue=True)
    except dbus.exceptions.NameExistsException:
        return None


def ask_first_to_show(bus: dbus.bus.BusConnection) -> None:
    """Have the running instance show itself."""
    bus.call_blocking(BUS_NAME, OBJECT_PATH, INTERFACE, "Show", "", [], timeout=5)


def _variant_dict(status: dict[str, Any]) -> Any:
    def typed(value: Any) -> Any:
        if isinstance(value, bool):
            return dbus.Boolean(value)
        if isinstance(value, int):
            return dbus.Int64(value)
        return dbus.String(str(value))
    return dbus.Dictionary({k: typed(v) for k, v in status.items()}, signature="sv")


class DesktopInterface(dbus.service.Object):
    """The exported object; each method calls the app's :class:`Controls`."""

    def __init__(self, bus: dbus.bus.BusConnection, controls: Controls):
        super().__init__(bus, OBJECT_PATH)
        self.controls = controls

    @dbus.service.method(INTERFACE, in_signature="", out_signature="")
    def Enable(self) -> None:
        self.controls.enable()

    @dbus.service.method(INTERFACE, in_signature="", out_signature="")
    def Disable(self) -> None:
        self.controls.disable()

    @dbus.service.method(INTERFACE, in_signature="", out_signature="a{sv}")
    def Status(self) -> Any:
        return _variant_dict(self.controls.status())

    @dbus.service.method(INTERFACE, in_signature="b", out_signature="")
    def SetDoNotDisturb(self, on: bool) -> None:
        self.controls.set_do_not_disturb(bool(on))

    @dbus.service.method(INTERFACE, in_signature="", out_signature="")
    def MarkAllRead(self) -> None:
        self.controls.mark_all_read()

    @dbus.service.method(INTERFACE, in_signature="", out_signature="")
    def Show(self) -> None:
        self.controls.present()

    @dbus.service.method(INTERFACE, in_signature="", out_signature="")
    def Reconnect(self) -> None:
        self.controls.reconnect()

    @dbus.service.method(INTERFACE, in_signature="", out_signature="")
    def Quit(self) -> None:
        self.controls.quit()

    @dbus.service.signal(INTERFACE, signature="ss")
    def NotificationReceived(self, topic: str, payload: str) -> None:
        pass

    @dbus.service.signal(INTERFACE, signature="a{sv}")
    def StatusChanged(self, status: Any) -> None:
        pass

    def status_changed(self) -> None:
        self.StatusChanged(_variant_dict(self.controls.status()))
