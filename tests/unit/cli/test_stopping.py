"""StopSignals: handlers that only note the signal, and a wait that sees it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from notifier.cli.stopping import StopSignals


@pytest.fixture
def usr1() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGUSR1)
    yield
    signal.signal(signal.SIGUSR1, previous)


def test_a_signal_raised_inside_the_handling_of_another_is_noted_too(usr1: None) -> None:
    signals = StopSignals((signal.SIGUSR1,))
    note = signal.getsignal(signal.SIGUSR1)
    assert callable(note)

    def nested(signum: int, frame: object) -> None:
        # A second signal arrives while the first is being handled.
        note(signum, frame)  # type: ignore[arg-type]
        if len(signals.received) == 1:
            signal.raise_signal(signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, nested)
    signal.raise_signal(signal.SIGUSR1)
    assert signals.received == [signal.SIGUSR1, signal.SIGUSR1]
    signals.wait()  # returns at once: a signal was noted


def test_wait_returns_when_the_other_event_is_set(usr1: None) -> None:
    signals = StopSignals((signal.SIGUSR1,))
    gave_up = threading.Event()
    threading.Timer(0.05, gave_up.set).start()
    signals.wait(also=gave_up)
    assert gave_up.is_set() and signals.received == []
