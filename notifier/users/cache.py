"""User records by name, kept in memory for ``notifier serve``.

``shape`` turns each local record into what delivery reads (in the service:
:meth:`notifier.storage.destinations.Destinations.deliverable`, which adds the
addresses a person verified and leaves out the pending ones), once, when the
record is read in; it is then served from memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DirectoryError
from .directory import UserDirectory

if TYPE_CHECKING:
    from ..config import Config
    from ..storage import Store

log = logging.getLogger(__name__)


class UserCache:
    """User records by name, read from the database once and kept until they change."""

    def __init__(self, config: Config, store: Store,
                 shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self._directory = UserDirectory(config, store)
        self._shape = shape
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, Any] | None] = {}

    def get(self, name: str) -> dict[str, Any] | None:
        """The user ``name``; None when nobody has that name, or FASJSON cannot be asked."""
        try:
            return self._users[name]
        except KeyError:
            pass
        try:
            user = self._directory.get(name)
        except DirectoryError as exc:
            log.error("user %r: %s", name, exc)
            return None
        # Local records change only through the change log; FASJSON profiles
        # expire on their own TTL, which the directory applies.
        if user is None or user.get("source") != "fasjson":
            if user is not None and self._shape is not None:
                user = self._shape(user)
            with self._lock:
                self._users[name] = user
        return user

    def peek(self, name: str) -> dict[str, Any] | None:
        """The record cached for ``name``, without asking the database or the directory."""
        return self._users.get(name)

    def preload(self, records: list[dict[str, Any]]) -> None:
        """Cache these local records, already shaped, so the first messages need no lookups."""
        with self._lock:
            for record in records:
                self._users[record["name"]] = {**record, "source": "local"}

    def forget(self, name: str | None = None) -> None:
        """Drop one cached user (or all), so the next lookup reads it again."""
        with self._lock:
            if name is None:
                self._users.clear()
            else:
                self._users.pop(name, None)
