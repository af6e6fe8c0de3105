"""The receiving end for the webpush backend: a stand-in push service on loopback.

Each user the contract addresses gets one browser (its own keys) subscribed
at :class:`~tests.integration.pushservice.PushService`, which checks the
VAPID header, TTL and Urgency and decrypts every push; what "arrived" is the
decrypted payload's title and body. The user ``refused`` has a browser whose
push service answers 403, which retrying will not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from notifier.storage import Store
from notifier.storage.push import PushSubscriptions
from tests.conftest import poll
from tests.integration.pushservice import PushService

from .contract import BasePeer, Delivered

REFUSED = "refused"


class WebpushPeer(BasePeer):
    """Browsers subscribed at a push service the test runs."""

    name: ClassVar[str] = "webpush"
    id: ClassVar[str] = "webpush"
    stoppable: ClassVar[bool] = True

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.service = PushService()
        self._store: Store | None = None
        self._seen = 0

    def database_url(self) -> str:
        return f"sqlite:///{self.tmp_path / 'push.db'}"

    def start(self) -> None:
        self.service.start()
        self._store = Store(self.database_url())

    def stop(self) -> None:
        self.service.stop()
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def config(self) -> dict[str, Any]:
        return {"database_url": self.database_url(),
                "webpush": {"contact": "mailto:admin@example.org",
                            "allow_private_endpoints": True, "timeout": 5.0}}

    def address(self, user: str) -> str:
        if self._store is not None and not any(
                b.user == user for b in self.service.browsers.values()):
            browser = self.service.browser(user, answers=[403] * 1000 if user == REFUSED
                                           else None)
            keys = browser.keys()
            PushSubscriptions(self._store).add(user, self.service.endpoint(browser),
                                               keys["p256dh"], keys["auth"],
                                               allow_private=True)
        return user

    def content(self, summary: str, body: str) -> dict[str, str]:
        return {"title": summary, "body": body}

    def reject_address(self) -> str | None:
        return self.address(REFUSED)

    def received(self, timeout: float) -> list[Delivered]:
        return poll(self._new, timeout)

    def _new(self) -> list[Delivered]:
        assert not self.service.problems, self.service.problems
        taken = self.service.taken()
        new, self._seen = taken[self._seen:], len(taken)
        return [Delivered(p.user, f"{p.payload['title']}\n{p.payload['body']}", p)
                for p in new]
