"""A thread that runs GLib's default main context, so dbus-python can deliver signals.

dbus-python hands incoming signals to Python only from a main loop. Its
``DBusGMainLoop`` attaches connections to GLib's default main context; this
thread iterates that context through libglib directly (with :mod:`ctypes`),
so PyGObject is not needed. Handlers run on this thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)


def _libglib() -> ctypes.CDLL:
    # dbus-python's GLib support links to libglib, so it is on any system that has it.
    lib = ctypes.CDLL(ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0")
    lib.g_main_context_iteration.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.g_main_context_iteration.restype = ctypes.c_int
    lib.g_main_context_wakeup.argtypes = [ctypes.c_void_p]
    lib.g_main_context_wakeup.restype = None
    return lib


class GLibThread:
    """Iterates GLib's default main context on a daemon thread until :meth:`stop`."""

    def __init__(self, name: str = "glib main loop"):
        self._glib = _libglib()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> GLibThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            # Blocks until an event source is ready; ctypes releases the GIL meanwhile.
            self._glib.g_main_context_iteration(None, 1)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current iteration, and wait for the thread."""
        self._stopping.set()
        if threading.current_thread() is self._thread:
            return  # called from a handler: the loop ends after this iteration
        deadline = time.monotonic() + timeout
        # Wake the context until the thread has seen the flag: another thread
        # iterating the same context may take a single wake-up for itself.
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._glib.g_main_context_wakeup(None)
            self._thread.join(0.05)
        if self._thread.is_alive():
            log.warning("GLib main loop thread did not stop within %g s", timeout)
