"""Finding a user: local records first, then FASJSON, through a cache.

The cache lives in the database (table ``profile_cache``), so it is shared
by every process using the same database and survives restarts. A profile,
or the fact that FASJSON has no such user, is reused for ``[fasjson]
cache_ttl``. When FASJSON cannot be reached and an expired entry exists, the
expired entry is used (with a warning in the log) rather than failing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import parse_duration
from .fasjson import DirectoryError, FasjsonSource

if TYPE_CHECKING:
    from ..config import Config
    from ..storage import Store

log = logging.getLogger(__name__)


class UserDirectory:
    """Looks users up by name: the local store wins, FASJSON fills in.

    ``get(name)`` returns ``{"name", "emails", "ircnicks", "groups",
    "delivery", "feed_token", "source"}``, ``source`` being ``"local"`` or
    ``"fasjson"``. A local record is returned as it is stored, FASJSON is
    not asked. A FASJSON-only user has ``feed_token`` None.
    """

    def __init__(self, config: Config, store: Store, *,
                 clock: Callable[[], float] = time.time,
                 source: FasjsonSource | None = None):
        self.store = store
        self.clock = clock
        self.ttl = parse_duration(config.fasjson.cache_ttl)
        if source is None and config.fasjson.url:
            source = FasjsonSource(config.fasjson.url, config.fasjson.auth)
        self.source = source

    def get(self, name: str) -> dict[str, Any] | None:
        """The user ``name``, or None if neither the store nor FASJSON knows them."""
        local = self.store.get_user(name)
        if local is not None:
            return {**local, "source": "local"}
        if self.source is None:
            return None
        profile = self._remote(name)
        if profile is None:
            return None
        return {**profile, "feed_token": None, "source": "fasjson"}

    def _remote(self, name: str) -> dict[str, Any] | None:
        now = self.clock()
        cached = self.store.cached_profile(name)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        assert self.source is not None
        try:
            profile = self.source.fetch(name)
        except DirectoryError as exc:
            if cached is None:
                raise
            log.warning("%s; using the profile of %r cached %.0f s ago",
                        exc, name, now - cached[1])
            return cached[0]
        self.store.cache_profile(name, profile, now)
        return profile
