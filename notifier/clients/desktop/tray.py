"""The tray icon: ``org.kde.StatusNotifierItem`` with a ``com.canonical.dbusmenu`` menu.

The item is exported at ``/StatusNotifierItem`` under the name
``org.kde.StatusNotifierItem-<pid>-1`` and registered with
``org.kde.StatusNotifierWatcher``, again whenever a watcher (re)starts. With
no watcher on the bus the app runs without an icon, and says so once.

The menu (``/MenuBar``) is built by the app as a list of :class:`Entry`;
:meth:`Tray.update` publishes a new layout and the item's new state.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dbus
import dbus.service

from .dbusobject import PropertyObject

log = logging.getLogger(__name__)

ITEM_INTERFACE = "org.kde.StatusNotifierItem"
ITEM_PATH = "/StatusNotifierItem"
MENU_INTERFACE = "com.canonical.dbusmenu"
MENU_PATH = "/MenuBar"
WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ICON = "notifier-desktop"
#: tries to register with a watcher that is starting (0.1 s, then twice as long each time)
REGISTER_ATTEMPTS = 7


@dataclass
class Entry:
    """One menu entry: its id, label, and what a click does (None: a separator, or
    an entry that cannot be clicked)."""

    id: int
    label: str = ""
    on_click: Callable[[], None] | None = None
    separator: bool = False
    toggle: bool | None = None  # a check box's state, None for a plain entry
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def props(self) -> dict[str, Any]:
        if self.separator:
            return {"type": dbus.String("separator")}
        out: dict[str, Any] = {"label": dbus.String(self.label),
                               "enabled": dbus.Boolean(self.enabled and bool(self.on_click)),
                               "visible": dbus.Boolean(True)}
        if self.toggle is not None:
            out["toggle-type"] = dbus.String("checkmark")
            out["toggle-state"] = dbus.Int32(1 if self.toggle else 0)
        return out


@dataclass
class TrayState:
    """What the icon shows."""

    attention: bool = False
    tooltip: str = ""


class Menu(PropertyObject):
    """``com.canonical.dbusmenu`` over a flat list of entries under the root (id 0)."""

    properties = {MENU_INTERFACE: {"Version": "u", "TextDirection": "s", "Status": "s",
                                   "IconThemePath": "as"}}

    def __init__(self, bus: dbus.bus.BusConnection):
        super().__init__(bus, MENU_PATH)
        self.entries: list[Entry] = []
        self.revision = 1

    def prop_Version(self) -> int:
        return 3

    def prop_TextDirection(self) -> str:
        return "ltr"

    def prop_Status(self) -> str:
        return "normal"

    def prop_IconThemePath(self) -> list[str]:
        return []

    def set_entries(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.revision += 1
        self.LayoutUpdated(dbus.UInt32(self.revision), dbus.Int32(0))

    def _item(self, entry_id: int, props: dict[str, Any], children: list[Any]) -> Any:
        return dbus.Struct((dbus.Int32(entry_id), dbus.Dictionary(props, signature="sv"),
                            dbus.Array(children, signature="v")), signature="ia{sv}av")

    def _props(self, entry_id: int) -> dict[str, Any] | None:
        if entry_id == 0:
            return {"children-display": dbus.String("submenu")}
        for entry in self.entries:
            if entry.id == entry_id:
                return entry.props()
        return None

    @dbus.service.method(MENU_INTERFACE, in_signature="iias", out_signature="u(ia{sv}av)")
    def GetLayout(self, parent: int, depth: int, names: Any) -> Any:
        if int(parent) == 0:
            children = [] if depth == 0 else [self._item(e.id, e.props(), [])
                                              for e in self.entries]
            return dbus.UInt32(self.revision), self._item(0, self._props(0) or {}, children)
        props = self._props(int(parent))
        if props is None:
            raise dbus.exceptions.DBusException(f"no menu entry {parent}",
                                                name="org.freedesktop.DBus.Error.InvalidArgs")
        return dbus.UInt32(self.revision), self._item(int(parent), props, [])

    @dbus.service.method(MENU_INTERFACE, in_signature="aias", out_signature="a(ia{sv})")
    def GetGroupProperties(self, ids: Any, names: Any) -> Any:
        wanted = [int(i) for i in ids] or [0] + [e.id for e in self.entries]
        out = []
        for entry_id in wanted:
            props = self._props(entry_id)
            if props is not None:
                if names:
                    props = {k: v for k, v in props.items() if k in names}
                out.append(dbus.Struct((dbus.Int32(entry_id),
                                        dbus.Dictionary(props, signature="sv")),
                                       signature="ia{sv}"))
        return dbus.Array(out, signature="(ia{sv})")

    @dbus.service.method(MENU_INTERFACE, in_signature="is", out_signature="v")
    def GetProperty(self, entry_id: int, name: str) -> Any:
        props = self._props(int(entry_id)) or {}
        if name not in props:
            raise dbus.exceptions.DBusException(f"no property {name} on entry {entry_id}",
                                                name="org.freedesktop.DBus.Error.InvalidArgs")
        return props[name]

    @dbus.service.method(MENU_INTERFACE, in_signature="isvu")
    def Event(self, entry_id: int, event: str, data: Any, timestamp: int) -> None:
        if event != "clicked":
            return
        for entry in self.entries:
            if entry.id == int(entry_id) and entry.on_click is not None and entry.enabled:
                entry.on_click()
                return

    @dbus.service.method(MENU_INTERFACE, in_signature="a(isvu)", out_signature="ai")
    def EventGroup(self, events: Any) -> Any:
        known = {e.id for e in self.entries}
        errors = [int(e[0]) for e in events if int(e[0]) not in known]
        for entry_id, event, data, timestamp in events:
            if int(entry_id) in known:
                self.Event(entry_id, event, data, timestamp)
        return dbus.Array(errors, signature="i")

    @dbus.service.method(MENU_INTERFACE, in_signature="i", out_signature="b")
    def AboutToShow(self, entry_id: int) -> bool:
        return False

    @dbus.service.method(MENU_INTERFACE, in_signature="ai", out_signature="aiai")
    def AboutToShowGroup(self, ids: Any) -> Any:
        return dbus.Array([], signature="i"), dbus.Array([], signature="i")

    @dbus.service.signal(MENU_INTERFACE, signature="a(ia{sv})a(ias)")
    def ItemsPropertiesUpdated(self, updated: Any, removed: Any) -> None:
        pass

    @dbus.service.signal(MENU_INTERFACE, signature="ui")
    def LayoutUpdated(self, revision: int, parent: int) -> None:
        pass

    @dbus.service.signal(MENU_INTERFACE, signature="iu")
    def ItemActivationRequested(self, entry_id: int, timestamp: int) -> None:
        pass


class Item(PropertyObject):
    """``org.kde.StatusNotifierItem``: the icon, its status and tooltip."""

    properties = {ITEM_INTERFACE: {
        "Category": "s", "Id": "s", "Title": "s", "Status": "s", "WindowId": "i",
        "IconName": "s", "IconThemePath": "s", "AttentionIconName": "s",
        "OverlayIconName": "s", "ToolTip": "(sa(iiay)ss)", "ItemIsMenu": "b", "Menu": "o"}}

    def __init__(self, bus: dbus.bus.BusConnection, on_activate: Callable[[], None],
                 icon_theme_path: str = ""):
        super().__init__(bus, ITEM_PATH)
        self.state = TrayState()
        self.on_activate = on_activate
        self.icon_theme_path = icon_theme_path

    def prop_Category(self) -> str:
        return "Communications"

    def prop_Id(self) -> str:
        return "notifier-desktop"

    def prop_Title(self) -> str:
        return "notifier"

    def prop_Status(self) -> str:
        return "NeedsAttention" if self.state.attention else "Active"

    def prop_WindowId(self) -> int:
        return 0

    def prop_IconName(self) -> str:
        return ICON

    def prop_IconThemePath(self) -> str:
        return self.icon_theme_path

    def prop_AttentionIconName(self) -> str:
        return ICON + "-attention"

    def prop_OverlayIconName(self) -> str:
        return ""

    def prop_ToolTip(self) -> Any:
        return ("", dbus.Array([], signature="(iiay)"), "notifier", self.state.tooltip)

    def prop_ItemIsMenu(self) -> bool:
        return False

    def prop_Menu(self) -> str:
        return MENU_PATH

    def show(self, state: TrayState) -> None:
        before, self.state = self.state, state
        if before.attention != state.attention:
            self.NewStatus(self.prop_Status())
            self.changed(ITEM_INTERFACE, "Status")
        if before.tooltip != state.tooltip:
            self.NewToolTip()
            self.changed(ITEM_INTERFACE, "ToolTip")

    @dbus.service.method(ITEM_INTERFACE, in_signature="ii")
    def Activate(self, x: int, y: int) -> None:
        self.on_activate()

    @dbus.service.method(ITEM_INTERFACE, in_signature="ii")
    def SecondaryActivate(self, x: int, y: int) -> None:
        self.on_activate()

    @dbus.service.method(ITEM_INTERFACE, in_signature="ii")
    def ContextMenu(self, x: int, y: int) -> None:
        pass  # the host shows the menu (Menu property)

    @dbus.service.method(ITEM_INTERFACE, in_signature="is")
    def Scroll(self, delta: int, orientation: str) -> None:
        pass

    @dbus.service.signal(ITEM_INTERFACE, signature="")
    def NewToolTip(self) -> None:
        pass

    @dbus.service.signal(ITEM_INTERFACE, signature="")
    def NewIcon(self) -> None:
        pass

    @dbus.service.signal(ITEM_INTERFACE, signature="s")
    def NewStatus(self, status: str) -> None:
        pass


class Tray:
    """The item and its menu on ``bus``, registered with the watcher whenever there is one."""

    def __init__(self, bus: dbus.bus.BusConnection, on_activate: Callable[[], None],
                 call_later: Callable[[float, Callable[[], None]], object],
                 icon_theme_path: str = ""):
        self.bus = bus
        self.call_later = call_later
        self.name = f"org.kde.StatusNotifierItem-{os.getpid()}-1"
        self._bus_name = dbus.service.BusName(self.name, bus, do_not_queue=True)
        self.menu = Menu(bus)
        self.item = Item(bus, on_activate, icon_theme_path)
        self.registered = False
        self._said_missing = False
        bus.add_signal_receiver(self._on_owner, "NameOwnerChanged", "org.freedesktop.DBus",
                                "org.freedesktop.DBus", "/org/freedesktop/DBus", arg0=WATCHER)
        if bus.name_has_owner(WATCHER):
            self.register()
        else:
            self._missing("no org.kde.StatusNotifierWatcher on the session bus")

    def _missing(self, why: str) -> None:
        if not self._said_missing:
            self._said_missing = True
            log.warning("%s: running without a tray icon (it appears when a tray starts)", why)

    def register(self, attempt: int = 0) -> None:
        """Register with the watcher. A watcher that has just taken its name may not
        have exported its object yet: then try again a few times, waiting longer each time."""
        try:
            self.bus.call_blocking(WATCHER, WATCHER_PATH, WATCHER, "RegisterStatusNotifierItem",
                                   "s", [self.name], timeout=5)
        except dbus.DBusException as exc:
            self.registered = False
            if attempt < REGISTER_ATTEMPTS and self.bus.name_has_owner(WATCHER):
                self.call_later(0.1 * 2 ** attempt, lambda: self.register(attempt + 1))
                return
            self._missing(f"the tray refused the icon ({exc.get_dbus_name()}: "
                          f"{exc.get_dbus_message()})")
            return
        self.registered = True
        log.info("tray icon registered with %s", WATCHER)

    def _on_owner(self, _name: str, _old: str, new: str) -> None:
        self.registered = False
        if new:
            self.register()

    def update(self, state: TrayState, entries: list[Entry]) -> None:
        self.item.show(state)
        self.menu.set_entries(entries)
