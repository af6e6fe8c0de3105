"""The app's main loop: GLib's default main context, iterated on the main thread.

dbus-python dispatches method calls and signals from GLib's main context
(``DBusGMainLoop``). This loop iterates that context through libglib with
:mod:`ctypes`, so neither PyGObject nor GTK is needed. Everything that
touches D-Bus runs on this thread; other threads (the stream reader, the API
calls) hand work over with :meth:`MainLoop.post`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import signal
from collections.abc import Callable

log = logging.getLogger(__name__)

_SOURCE_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_FD_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)
_G_IO_IN = 1


def _libglib() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0")
    lib.g_main_context_iteration.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.g_main_context_iteration.restype = ctypes.c_int
    lib.g_main_context_wakeup.argtypes = [ctypes.c_void_p]
    lib.g_main_context_wakeup.restype = None
    lib.g_timeout_add.argtypes = [ctypes.c_uint, _SOURCE_FUNC, ctypes.c_void_p]
    lib.g_timeout_add.restype = ctypes.c_uint
    lib.g_source_remove.argtypes = [ctypes.c_uint]
    lib.g_source_remove.restype = ctypes.c_int
    lib.g_unix_fd_add.argtypes = [ctypes.c_int, ctypes.c_uint, _FD_FUNC, ctypes.c_void_p]
    lib.g_unix_fd_add.restype = ctypes.c_uint
    return lib


class Timer:
    """A pending :meth:`MainLoop.call_later`; :meth:`cancel` it before it fires."""

    def __init__(self, loop: MainLoop, callback: Callable[[], None]):
        self._loop = loop
        self._callback = callback
        self.source = 0
        self.done = False
        self.func = _SOURCE_FUNC(self._fire)

    def _fire(self, _data: object) -> int:
        self.done = True
        self._loop._timers.discard(self)
        self._loop._run(self._callback)
        return 0  # a one-shot source

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            self._loop._timers.discard(self)
            self._loop.glib.g_source_remove(self.source)


class MainLoop:
    """Runs GLib's default main context until :meth:`quit`; SIGTERM and SIGINT quit it."""

    def __init__(self) -> None:
        self.glib = _libglib()
        self._posted: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._timers: set[Timer] = set()
        self._running = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._fd_func = _FD_FUNC(self._on_wake_fd)
        self.glib.g_unix_fd_add(self._wake_r, _G_IO_IN, self._fd_func, None)
        #: the exit status :meth:`run` returns
        self.status = 0

    def post(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop's thread soon. Safe from any thread."""
        self._posted.put(callback)
        self.glib.g_main_context_wakeup(None)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the loop's thread after ``delay`` seconds."""
        timer = Timer(self, callback)
        timer.source = self.glib.g_timeout_add(max(0, int(delay * 1000)), timer.func, None)
        self._timers.add(timer)
        return timer

    def quit(self, status: int = 0) -> None:
        self.status = status
        self._running = False
        self.glib.g_main_context_wakeup(None)

    def run(self) -> int:
        """Iterate until :meth:`quit`; returns the exit status."""
        self._running = True
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        # A signal that lands on another thread still wakes the main context, through
        # this pipe (Python writes the signal number to it).
        old_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in previous:
            signal.signal(sig, lambda signum, frame: self.quit(0))
        try:
            while self._running:
                self.glib.g_main_context_iteration(None, 1)
                self._drain()
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.status

    def _drain(self) -> None:
        while self._running:
            try:
                callback = self._posted.get_nowait()
            except queue.Empty:
                return
            self._run(callback)

    def _run(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # one failing handler must not stop the app
            log.exception("in the main loop")

    def _on_wake_fd(self, fd: int, _condition: int, _data: object) -> int:
        try:
            os.read(fd, 512)
        except BlockingIOError:
            pass
        return 1  # keep watching
