"""Notifications, envelopes and a settable clock for tests of the outbox and its users."""

from __future__ import annotations

from notifier.notification import Notification


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def note(user: str, msg_id: str, destination: str = "email", **kw: object) -> Notification:
    return Notification(user=user, destination=destination, address=f"{user}@example.org",
                        msg_id=msg_id, topic="org.fedoraproject.prod.bodhi.update.comment",
                        app="bodhi", content={"subject": f"about {msg_id}", "text": "t",
                                              "html": "<p>t</p>"}, **kw)  # type: ignore[arg-type]


def envelope(msg_id: str) -> dict[str, object]:
    return {"msg_id": msg_id, "topic": "org.fedoraproject.prod.bodhi.update.comment",
            "timestamp": 1_800_000_000, "msg": {"comment": "hi"}}
