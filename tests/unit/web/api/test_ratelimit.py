"""The rate limiter: a sliding minute per key, and how long to wait when over."""

from __future__ import annotations

import pytest

from notifier.web.api.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float = 6000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_key_over_its_rate_waits_and_others_do_not() -> None:
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a")
    assert wait is not None and 1 <= wait <= 120
    assert limiter.hit("b") is None
    clock.now += 120  # two windows later, nothing is left
    assert limiter.hit("a") is None


def test_the_last_window_still_counts_in_part() -> None:
    clock = Clock(6000.0)  # the start of a window
    limiter = RateLimiter(4, clock=clock)
    assert [limiter.hit("a") for _ in range(4)] == [None] * 4
    clock.now += 60 + 15  # a quarter into the next: 3 of the last 4 still count
    assert limiter.hit("a") is None
    wait = limiter.hit("a")
    assert wait is not None
    clock.now += wait
    assert limiter.hit("a") is None


@pytest.mark.parametrize("rate", [1, 2, 5])
@pytest.mark.parametrize("offset", [0.0, 10.5, 59.0])
def test_retry_after_is_honest(rate: int, offset: float) -> None:
    """Asked again just before Retry-After, still refused; at Retry-After, allowed."""
    clock = Clock(6000.0 + offset)
    limiter = RateLimiter(rate, clock=clock)
    for _ in range(rate):
        assert limiter.hit("a") is None
    for _ in range(3):
        wait = limiter.hit("a")
        assert wait is not None
        clock.now += wait - 1
        assert limiter.hit("a") is not None
        clock.now += 1
        assert limiter.hit("a") is None


def test_no_limit_and_a_bounded_memory() -> None:
    assert all(RateLimiter(0).hit("a") is None for _ in range(1000))
    limiter = RateLimiter(1, capacity=2, clock=Clock())
    for key in "abc":
        assert limiter.hit(key) is None
    assert limiter.hit("a") is None  # forgotten: the oldest
    assert limiter.hit("c") is not None
