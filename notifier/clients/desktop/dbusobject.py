"""A dbus-python object with D-Bus properties (``org.freedesktop.DBus.Properties``).

dbus-python exports methods and signals but has no properties: subclasses
list theirs in :attr:`PropertyObject.properties` as ``{interface: {name:
signature}}`` and give each a ``prop_<name>`` method; ``Get``, ``GetAll``
and the introspection data are made from that.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

import dbus
import dbus.service

PROPERTIES = "org.freedesktop.DBus.Properties"


class PropertyObject(dbus.service.Object):
    """See the module docstring."""

    properties: dict[str, dict[str, str]] = {}

    def _value(self, interface: str, name: str) -> Any:
        signature = self.properties[interface][name]
        value = getattr(self, f"prop_{name}")()
        return _typed(value, signature)

    @dbus.service.method(PROPERTIES, in_signature="ss", out_signature="v")
    def Get(self, interface: str, name: str) -> Any:
        if name not in self.properties.get(str(interface), {}):
            raise dbus.exceptions.DBusException(
                f"no property {name} on {interface}",
                name="org.freedesktop.DBus.Error.UnknownProperty")
        return self._value(str(interface), str(name))

    @dbus.service.method(PROPERTIES, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface: str) -> Any:
        names = self.properties.get(str(interface), {})
        return dbus.Dictionary({name: self._value(str(interface), name) for name in names},
                               signature="sv")

    @dbus.service.method(PROPERTIES, in_signature="ssv")
    def Set(self, interface: str, name: str, value: Any) -> None:
        raise dbus.exceptions.DBusException(
            f"{interface}.{name} is read-only", name="org.freedesktop.DBus.Error.PropertyReadOnly")

    @dbus.service.signal(PROPERTIES, signature="sa{sv}as")
    def PropertiesChanged(self, interface: str, changed: Any, invalidated: Any) -> None:
        pass

    def changed(self, interface: str, *names: str) -> None:
        """Emit ``PropertiesChanged`` with the new values of ``names``."""
        self.PropertiesChanged(interface, dbus.Dictionary(
            {n: self._value(interface, n) for n in names}, signature="sv"),
            dbus.Array([], signature="s"))

    @dbus.service.method(dbus.INTROSPECTABLE_IFACE, in_signature="", out_signature="s",
                         path_keyword="object_path", connection_keyword="connection")
    def Introspect(self, object_path: str, connection: Any) -> str:
        xml = str(dbus.service.Object.Introspect(self, object_path, connection))
        for interface, props in self.properties.items():
            rows = "".join(f'    <property name={quoteattr(n)} type={quoteattr(s)} '
                           f'access="read"/>\n' for n, s in props.items())
            marker = f'<interface name="{interface}">\n'
            if marker in xml:
                xml = xml.replace(marker, marker + rows, 1)
            else:
                xml = xml.replace("</node>", f"  {marker}{rows}  </interface>\n</node>", 1)
        return xml


def _typed(value: Any, signature: str) -> Any:
    """``value`` as the D-Bus type ``signature`` names, so that it travels as that type."""
    simple = {"s": dbus.String, "o": dbus.ObjectPath, "b": dbus.Boolean, "u": dbus.UInt32,
              "i": dbus.Int32, "x": dbus.Int64}
    if signature in simple:
        return simple[signature](value)
    if signature.startswith("a{"):
        return dbus.Dictionary(value, signature=signature[2:-1])
    if signature.startswith("a"):
        return dbus.Array(value, signature=signature[1:])
    if signature.startswith("("):
        return dbus.Struct(value, signature=signature[1:-1])
    return value
