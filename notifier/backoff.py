"""Delays before trying again: exponential, capped, with jitter.

One rule for every retry in notifier: a delivery that failed (the outbox),
a connection that dropped (IRC), a part of ``notifier serve`` that crashed.
Jitter keeps many clients that lost the same server from coming back at the
same instant. The delay for attempt ``n`` (from 0) is drawn between half and
all of ``min(cap, base * 2**n)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(attempt: int, base: float, cap: float,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, not {attempt}")
    # Stop doubling once past the cap, so huge attempt numbers cannot overflow.
    ceiling = cap if attempt > 62 else min(cap, base * 2 ** attempt)
    return ceiling * (0.5 + 0.5 * rand())
