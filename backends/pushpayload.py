"""The payload of a Web Push notification: what a browser's service worker receives.

This is the one description of it; the service worker
(``templates/web/static/sw.js``) reads it, and the webpush backend
(:mod:`notifier.backends.webpush`) encrypts it for each browser. A JSON
object, UTF-8, of at most :data:`MAX_PAYLOAD` bytes:

=============  ==========================================================
``title``      the notification's title (always there; cut last)
``body``       its text, may be empty (cut first, with an ellipsis)
``link``       the URL a click opens, or null (never cut)
``icon``       the app's icon URL, or null (left out when too long)
``tag``        the bus message's id: a second push of one message replaces
               the first notification rather than showing two
``app``        the app that sent the message (``koji``)
``topic``      the message's topic
``severity``   ``debug``, ``info``, ``warning`` or ``error``
``timestamp``  when the message was sent, seconds since the epoch
=============  ==========================================================

The worker shows ``title`` with ``body``, ``icon``, ``tag``, the timestamp
(in milliseconds) and ``data`` = ``{link, app, severity, tag}``; a click opens
``data.link`` (http or https only; else the inbox), in the tab that shows it
already if there is one. An error stays on screen until it is dismissed.

To fit, the body is cut first, then the icon is left out, then the title is
cut; the link never is.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import PermanentDeliveryError
from ..notification import Notification

#: the most plaintext bytes one aes128gcm record of 4096 bytes holds: 4096 less the
#: header (86 bytes with a P-256 key id), the tag (16) and the padding delimiter (1)
MAX_PAYLOAD = 4096 - 86 - 16 - 1
_ELLIPSIS = "\u2026"


def payload(notification: Notification, limit: int = MAX_PAYLOAD) -> bytes:
    """The JSON payload of ``notification``, at most ``limit`` bytes; the link is never cut.

    :class:`PermanentDeliveryError` when it has no rendered ``title``, or
    when even its link and a short title do not fit.
    """
    content = notification.content
    title, body = content.get("title"), content.get("body", "")
    if not isinstance(title, str) or not title or not isinstance(body, str):
        raise PermanentDeliveryError(
            f"webpush to {notification.address!r}: notification {notification.msg_id} has "
            "no rendered 'title'")
    data: dict[str, Any] = {"title": title, "body": body, "link": notification.link,
                            "icon": notification.icon, "app": notification.app,
                            "topic": notification.topic, "severity": notification.severity,
                            "tag": notification.msg_id, "timestamp": notification.timestamp}
    encoded = orjson.dumps(data)
    if len(encoded) <= limit:
        return encoded
    for key in ("body", "icon", "title"):
        data[key] = _cut_to_fit(data, key, limit)
        encoded = orjson.dumps(data)
        if len(encoded) <= limit:
            return encoded
    raise PermanentDeliveryError(
        f"webpush to {notification.address!r}: notification {notification.msg_id} does not "
        f"fit in {limit} bytes, even with its body left out (its link is "
        f"{len(notification.link or '')} characters)")


def _cut_to_fit(data: dict[str, Any], key: str, limit: int) -> str | None:
    """The longest start of ``data[key]`` (with an ellipsis) that fits, or what is shortest."""
    value = data[key]
    if not value or key == "icon":
        return None if key == "icon" else value  # a cut address is no icon
    others = len(orjson.dumps({**data, key: ""}))
    if others > limit:
        return _ELLIPSIS if key == "title" else ""
    low, high = 0, len(value)
    while low < high:  # the longest prefix whose JSON form fits what is left
        mid = (low + high + 1) // 2
        if len(orjson.dumps(value[:mid] + _ELLIPSIS)) - 2 <= limit - others:
            low = mid
        else:
            high = mid - 1
    return value[:low].rstrip() + _ELLIPSIS
