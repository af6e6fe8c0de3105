"""Grouping held notifications into one digest: by app, then by package, newest first.

The package of an item is the ``X-Notifier-Package`` header the render
stage gives it on every destination (the message's first package); items
without one are grouped under package ``None``. Apps are told apart
case-insensitively.
Apps, packages within an app and items within a package are ordered by
their newest item, newest first. Items come in the order they were held,
oldest first; items of the same second keep that order, reversed, so the
one held last still shows first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..notification import Notification
from .headers import PACKAGE_HEADER
from .templates import app_key
from .text import irc_data, single_line

#: content parts that make a one-line headline, by preference (of a Matrix ``body``,
#: its first line)
_HEADLINE_PARTS = ("subject", "title", "summary", "line", "body")
_SEVERITY_ORDER = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def headline(item: Notification) -> str:
    """A one-line description of a rendered notification.

    It is the first of the subject, title, summary, IRC line or the first line
    of a Matrix body the item has,
    without a leading ``[app]`` tag: the digest already groups by app.
    """
    for part in _HEADLINE_PARTS:
        text = item.content.get(part)
        if text:
            if part == "body":
                text = text.split("\n", 1)[0]
            text = single_line(irc_data(text) if part == "line" else text)
            tag = f"[{item.app}]"
            if item.app and text[: len(tag)].lower() == tag.lower():
                text = text[len(tag):].lstrip() or text
            return text
    return single_line(item.topic)


def highest_severity(items: Iterable[Notification]) -> str:
    """The most severe ``severity`` among ``items``."""
    return max((i.severity for i in items), key=lambda s: _SEVERITY_ORDER.get(s, 1),
               default="info")


def group_items(items: Iterable[Notification]) -> list[dict[str, Any]]:
    """``items`` as ``[{app, count, packages: [{package, count, notifications: [...]}]}]``.

    Each item is a dict with ``headline``, ``link``, ``topic``, ``app``,
    ``package``, ``timestamp``, ``severity`` and ``msg_id``.
    """
    apps: dict[str, dict[str, Any]] = {}
    for item in sorted(reversed(list(items)), key=lambda n: -n.timestamp):
        package = item.headers.get(PACKAGE_HEADER) or None
        app = apps.setdefault(app_key(item.app), {"app": item.app, "count": 0, "packages": {}})
        group = app["packages"].setdefault(package, {"package": package, "count": 0,
                                                     "notifications": []})
        group["notifications"].append({
            "headline": headline(item), "link": item.link, "topic": item.topic,
            "app": item.app, "package": package, "timestamp": item.timestamp,
            "severity": item.severity, "msg_id": item.msg_id,
        })
        group["count"] += 1
        app["count"] += 1
    return [{**app, "packages": list(app["packages"].values())} for app in apps.values()]
