from __future__ import annotations

import pytest

from notifier.backoff import backoff_delay


def test_doubles_each_attempt_without_jitter():
    delays = [backoff_delay(n, base=1.0, cap=60.0, rand=lambda: 1.0) for n in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_jitter_stays_between_half_and_full():
    assert backoff_delay(3, base=1.0, cap=60.0, rand=lambda: 0.0) == 4.0
    assert backoff_delay(3, base=1.0, cap=60.0, rand=lambda: 0.5) == 6.0
    for n in range(20):
        assert 0.25 <= backoff_delay(n, base=0.5, cap=30.0) <= 30.0


def test_huge_attempt_numbers_stay_at_cap():
    assert backoff_delay(10_000, base=1.0, cap=60.0, rand=lambda: 1.0) == 60.0


def test_negative_attempt_is_rejected():
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, base=1.0, cap=2.0)
