"""What the live streams carry: the rows a :class:`~notifier.web.hub.Channel` reads, as events.

A source reads rows in id order after a mark, for everyone or for some users,
and encodes each as one Server-Sent Event, ``(id, bytes)``, ready to send:

* :class:`DesktopRows`: outbox rows of destination ``desktop``
  (``/users/<user>/stream``), the notification's content as JSON;
* :class:`InboxRows`: inbox rows (``/api/v1/notifications/stream``), each as
  the same JSON object as one item of ``GET /api/v1/notifications``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..storage.inbox import Inbox, InboxItem
from ..storage.outbox import Outbox, OutboxRow

#: ``(row id, the encoded event)``
Frame = tuple[int, bytes]
#: desktop rows never streamed: held for a digest, or already in one
UNSTREAMED = frozenset({"held", "digested"})


class Source(Protocol):
    """Rows for live streams (read off the event loop; may raise StorageError)."""

    #: what the rows are, for the logs
    name: str

    def last_id(self) -> int:
        """The newest row id (0 when there is none)."""

    def read(self, after: int, users: list[str] | None, limit: int
             ) -> tuple[int, int, list[tuple[str, Frame]]]:
        """Up to ``limit`` rows after id ``after`` (of ``users``, if given): the id of the
        last row read (``after`` when none), how many were read, and ``(user, frame)`` of
        each that is streamed."""


def event(row_id: int, name: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event: ``id``, ``event`` and one line of compact JSON."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {row_id}\nevent: {name}\ndata: {text}\n\n".encode()


def stream_payload(row: OutboxRow) -> dict[str, Any]:
    """What a desktop stream's client gets for one row (the ``data:`` of its event)."""
    notification = row.notification
    content = notification.content
    return {"msg_id": notification.msg_id, "topic": notification.topic,
            "app": notification.app, "summary": content.get("summary", ""),
            "body": content.get("body", ""), "link": notification.link,
            "icon": notification.icon, "severity": notification.severity,
            "timestamp": notification.timestamp, "rules": list(notification.rules)}


def frame(row: OutboxRow) -> Frame:
    """``(id, bytes)`` of one desktop row's event."""
    return row.id, event(row.id, "notification", stream_payload(row))


def frames(rows: list[OutboxRow]) -> list[tuple[str, Frame]]:
    """``(user, frame)`` of each desktop row that is streamed."""
    return [(row.user, frame(row)) for row in rows if row.state not in UNSTREAMED]


class DesktopRows:
    """The outbox's ``desktop`` rows."""

    name = "desktop"

    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def last_id(self) -> int:
        return self.outbox.last_id()

    def read(self, after: int, users: list[str] | None, limit: int
             ) -> tuple[int, int, list[tuple[str, Frame]]]:
        if users is None:
            rows = self.outbox.rows(destination="desktop", after_id=after, limit=limit)
        else:
            rows = self.outbox.rows(users=users, destination="desktop", after_id=after,
                                    limit=limit)
        return (rows[-1].id if rows else after), len(rows), frames(rows)


def inbox_frame(item: InboxItem) -> Frame:
    """``(id, bytes)`` of one inbox row's event."""
    return item.id, event(item.id, "notification", item.to_dict())


class InboxRows:
    """Every user's inbox rows."""

    name = "inbox"

    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def last_id(self) -> int:
        return self.inbox.newest_id()

    def read(self, after: int, users: list[str] | None, limit: int
             ) -> tuple[int, int, list[tuple[str, Frame]]]:
        items = self.inbox.after(after, users, limit)
        return ((items[-1].id if items else after), len(items),
                [(item.user, inbox_frame(item)) for item in items])
