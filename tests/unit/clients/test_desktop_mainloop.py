"""The app's main loop on GLib's main context: work posted from threads, timers, SIGTERM."""

from __future__ import annotations

import os
import signal
import threading

from notifier.clients.desktop.mainloop import MainLoop


def test_posted_work_and_timers_run_on_the_loop_thread_then_it_quits() -> None:
    loop = MainLoop()
    seen: list[tuple[str, bool]] = []
    main = threading.current_thread()

    def later() -> None:
        seen.append(("timer", threading.current_thread() is main))
        loop.quit(3)

    def from_thread() -> None:
        loop.post(lambda: seen.append(("posted", threading.current_thread() is main)))
        loop.post(lambda: loop.call_later(0.05, later))

    cancelled = loop.call_later(0.01, lambda: seen.append(("cancelled", True)))
    cancelled.cancel()
    threading.Thread(target=from_thread).start()
    assert loop.run() == 3
    assert seen == [("posted", True), ("timer", True)]


def test_sigterm_from_another_thread_ends_the_loop_with_status_0() -> None:
    loop = MainLoop()
    loop.post(lambda: threading.Thread(
        target=lambda: os.kill(os.getpid(), signal.SIGTERM)).start())
    previous = signal.getsignal(signal.SIGTERM)
    assert loop.run() == 0
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_failing_callback_does_not_stop_the_loop() -> None:
    loop = MainLoop()
    loop.post(lambda: 1 / 0)
    loop.post(lambda: loop.quit(5))
    assert loop.run() == 5
