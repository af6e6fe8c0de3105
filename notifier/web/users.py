"""Who may read a feed or open a live stream: a local user, with their feed token.

Only local users have feed tokens, so only local records are looked at: the
service's user cache first (it holds every local user from the start), then
the database. The directory (FASJSON) is never asked and nothing is
written, whatever the name. A name nobody has is remembered in a bounded
cache for ``[fasjson] cache_ttl``, so asking again costs nothing.

An unknown user and a wrong token get the same answer, and take the same
path: the token given is always compared, in constant time, with the user's
token or, for an unknown user, with a random token of the same shape.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

User = dict[str, Any]


class NegativeCache:
    """Names known not to exist, each for ``ttl`` seconds, ``capacity`` at most (oldest go)."""

    def __init__(self, ttl: float, capacity: int = 10000,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        with self._lock:
            until = self._until.get(name)  # type: ignore[call-overload]
            if until is None:
                return False
            if until <= self._clock():
                del self._until[name]  # type: ignore[arg-type]
                return False
            return True

    def add(self, name: str) -> None:
        with self._lock:
            self._until.pop(name, None)
            self._until[name] = self._clock() + self.ttl
            while len(self._until) > self.capacity:
                self._until.popitem(last=False)

    def discard(self, name: str) -> None:
        with self._lock:
            self._until.pop(name, None)

    def __len__(self) -> int:
        return len(self._until)


class FeedUsers:
    """Finds the local user a feed token opens.

    ``cached(name)`` returns what the service's cache holds (no I/O), ``load(name)``
    reads the local record from the database (None when there is none), and
    ``remember(record)`` puts a record read that way into the service's cache.
    """

    def __init__(self, cached: Callable[[str], User | None], load: Callable[[str], User | None],
                 remember: Callable[[User], None], negative: NegativeCache):
        self._cached = cached
        self._load = load
        self._remember = remember
        self.negative = negative
        self._dummy = secrets.token_urlsafe(32)

    def known(self, name: str) -> tuple[bool, User | None]:
        """``(settled, user)`` from memory alone: settled is False when the database must say."""
        user = self._cached(name)
        if user is not None and user.get("source", "local") == "local":
            return True, user
        if name in self.negative:
            return True, None
        return False, None

    def load(self, name: str) -> User | None:
        """Read ``name``'s local record from the database, remembering the answer."""
        user = self._load(name)
        if user is None:
            self.negative.add(name)
        else:
            self._remember(user)
        return user

    def check(self, user: User | None, token: str | None) -> User | None:
        """``user`` if ``token`` is their feed token, else None; constant time either way."""
        expected = (user or {}).get("feed_token") or self._dummy
        given = token or ""
        same = hmac.compare_digest(given.encode(), expected.encode())
        return user if same and user is not None and user.get("feed_token") else None
