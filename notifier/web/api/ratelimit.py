"""Rate limits: so many requests per minute per signed-in user, and per client address.

A sliding window of one minute kept as two fixed windows (this one and the
last, weighted by how much of the last still falls inside): constant memory
per key, and no burst of twice the limit at a window's edge. At most
``capacity`` keys are remembered; the ones idle longest are forgotten first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW = 60.0


class RateLimiter:
    """``hit(key)``: None while ``per_minute`` holds, else the seconds to wait."""

    def __init__(self, per_minute: int, *, capacity: int = 100000,
                 clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.capacity = capacity
        self._clock = clock
        self._windows: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one request for ``key``; None if allowed, else ``Retry-After`` seconds."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        window = int(now // WINDOW)
        with self._lock:
            start, last, current = self._windows.pop(key, (window, 0, 0))
            if window != start:
                last, current = (current if window == start + 1 else 0), 0
                start = window
            weight = 1 - (now - start * WINDOW) / WINDOW
            used = last * weight + current
            if used + 1 > self.per_minute:
                self._windows[key] = (start, last, current)
                # the wait until enough has slid out of the sliding minute: of the
                # last window, or (when this one alone is full) of this one, once
                # it has become the last
                if current + 1 > self.per_minute:
                    wait = (start + 1) * WINDOW - now + \
                        (1 - (self.per_minute - 1) / current) * WINDOW
                else:
                    wait = (used + 1 - self.per_minute) / max(last, 1) * WINDOW
                return max(1, math.ceil(wait))
            self._windows[key] = (start, last, current + 1)
            while len(self._windows) > self.capacity:
                self._windows.popitem(last=False)
        return None
