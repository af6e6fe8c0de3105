"""Backend.send_batch's default: one outcome per notification, whatever send raises."""

from __future__ import annotations

import pytest

from notifier.backends.base import Backend
from notifier.config import config_from_dict
from notifier.errors import PermanentDeliveryError, TemporaryDeliveryError
from notifier.notification import Notification


class Picky(Backend):
    """Delivers to a list; refuses "nobody", and has a bug for "bug"."""

    name = "picky"

    def __init__(self) -> None:
        super().__init__(config_from_dict({}))
        self.delivered: list[str] = []

    def send(self, notification: Notification) -> None:
        if notification.user == "nobody":
            raise PermanentDeliveryError("no such user")
        if notification.user == "bug":
            raise AttributeError("'NoneType' object has no attribute 'sendall'")
        self.delivered.append(notification.user)


def note(user: str) -> Notification:
    return Notification(user=user, destination="picky", address=user, msg_id="m1",
                        topic="t", app="a", content={})


def test_anything_send_raises_is_that_notifications_temporary_failure(
        caplog: pytest.LogCaptureFixture) -> None:
    backend = Picky()
    outcomes = backend.send_batch([note(u) for u in ("alice", "bug", "nobody", "bob")])
    assert backend.delivered == ["alice", "bob"]  # the ones after the bug still went
    assert outcomes[0] is None and outcomes[3] is None
    assert isinstance(outcomes[1], TemporaryDeliveryError)
    assert "AttributeError" in str(outcomes[1]) and "sendall" in str(outcomes[1])
    assert isinstance(outcomes[1].__cause__, AttributeError)
    assert isinstance(outcomes[2], PermanentDeliveryError)
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert "picky backend: sending m1 to bug raised" in logged.getMessage()
