"""Backends by name: the built-in table, then the ``notifier.backends`` entry points."""

from __future__ import annotations

import difflib
from importlib import import_module
from importlib.metadata import entry_points

from ..errors import ConfigError
from .base import Backend

ENTRY_POINT_GROUP = "notifier.backends"

#: destination name -> "module:Class"
BACKENDS = {
    "email": "notifier.backends.email:EmailBackend",
    "irc": "notifier.backends.irc:IrcBackend",
    "rss": "notifier.backends.rss:RssBackend",
    "desktop": "notifier.backends.desktop:DesktopBackend",
    "webpush": "notifier.backends.webpush:WebpushBackend",
    "matrix": "notifier.backends.matrix:MatrixBackend",
}


def available() -> list[str]:
    """Every backend name: built-in ones and those from entry points."""
    return sorted(set(BACKENDS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``."""
    if name in BACKENDS:
        module, _, attr = BACKENDS[name].partition(":")
        return getattr(import_module(module), attr)
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return ep.load()
    near = difflib.get_close_matches(name, available(), n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    raise ConfigError(f"no backend named '{name}'{hint}; known: {', '.join(available())}")
