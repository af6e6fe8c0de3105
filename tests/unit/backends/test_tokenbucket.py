from __future__ import annotations

import pytest

from notifier.backends.tokenbucket import TokenBucket


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def take_all(bucket: TokenBucket) -> int:
    taken = 0
    while bucket.try_take():
        taken += 1
    return taken


def test_starts_full_with_burst_tokens():
    bucket = TokenBucket(rate=2.0, burst=5, clock=FakeClock())
    assert take_all(bucket) == 5
    assert not bucket.try_take()


def test_refills_at_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5, clock=clock)
    take_all(bucket)
    clock.now += 0.4
    assert not bucket.try_take()
    clock.now += 0.1
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.now += 1.5
    assert take_all(bucket) == 3


def test_never_holds_more_than_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=3, clock=clock)
    clock.now += 3600
    assert bucket.tokens == 3.0
    assert take_all(bucket) == 3


def test_delay_says_when_next_token_comes():
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, burst=1, clock=clock)
    assert bucket.delay() == 0.0
    assert bucket.try_take()
    assert bucket.delay() == pytest.approx(0.25)
    clock.now += 0.1
    assert bucket.delay() == pytest.approx(0.15)
    clock.now += 0.15
    assert bucket.delay() == 0.0


def test_clock_stepping_back_does_not_drain():
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    bucket.try_take()
    clock.now -= 50
    assert bucket.tokens == pytest.approx(1.0)
    clock.now += 1
    assert bucket.tokens == pytest.approx(2.0)


def test_sustained_rate_over_many_takes():
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, burst=2, clock=clock)
    taken = 0
    for _ in range(1000):  # 10 s in 10 ms steps
        clock.now += 0.01
        taken += take_all(bucket)
    # 2 at once, then 5 per second for 10 s
    assert taken == pytest.approx(52, abs=1)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_rejects_bad_parameters(rate, burst):
    with pytest.raises(ValueError, match="rate|burst"):
        TokenBucket(rate=rate, burst=burst)
