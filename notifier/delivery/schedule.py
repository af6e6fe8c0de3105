"""Digest schedules: ``30s``, ``15m``, ``1h`` ... or ``daily@08:00``.

Time is cut into windows: fixed-length ones counted from the epoch, or days
starting at the given local time of day. A digest goes out at the start of
the window after its oldest item arrived, or earlier, as soon as
``max_items`` are waiting, but never twice in one window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..errors import InputError
from ..users.settings import parse_every


@dataclass(frozen=True)
class Schedule:
    """A digest schedule: ``length`` seconds per window, starting ``offset`` into the day."""

    text: str
    length: int
    offset: int = 0
    local: bool = False

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse ``every`` (see :func:`notifier.users.settings.parse_every`).

        Raises :class:`InputError` naming the text.
        """
        try:
            length, offset, local = parse_every(text)
        except InputError as exc:
            raise InputError(f"digest 'every': {exc}") from exc
        return cls(text, length, offset, local)

    def _shift(self, when: float) -> float:
        if not self.local:
            return when
        # Local midnight differs from UTC midnight by the zone's offset at that time.
        return when + time.localtime(when).tm_gmtoff - self.offset

    def window(self, when: float) -> int:
        """The number of the window ``when`` falls in."""
        return math.floor(self._shift(when) / self.length)

    def window_start(self, index: int) -> float:
        """When window ``index`` starts (approximately, across a DST change)."""
        start = index * self.length
        if self.local:
            start = start + self.offset - time.localtime(start).tm_gmtoff
        return float(start)

    def due(self, *, now: float, oldest: float, count: int, max_items: int,
            last_window: int | None) -> bool:
        """Whether a digest should go out now."""
        current = self.window(now)
        if last_window is not None and last_window >= current:
            return False  # one digest per window
        return self.window(oldest) < current or count >= max_items
