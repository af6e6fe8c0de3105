"""One supervisor for every thread and child process of ``notifier serve``.

A *part* is any object with

* ``name``: what the logs, the metrics and ``/healthz`` call it;
* ``run(stopping)``: does the part's work until the :class:`threading.Event`
  ``stopping`` is set, then returns. An unexpected exception propagates out
  of it, and ``run`` may then be called again: a part is restartable;

and optionally

* ``stalled()``: why the part is not making progress although it runs (an
  ingest not draining while messages wait, a worker with due rows it does not
  send), or None;
* ``ready``: False while the part runs but cannot take work yet (a child
  process still starting);
* ``interrupt()``: cuts short a wait ``run`` cannot see ``stopping`` from (a
  ZeroMQ proxy loop, a worker idle on its own event); called after
  ``stopping`` is set.

The supervisor runs each part in a thread of its own. When ``run`` raises
(or returns although nobody asked it to stop), the failure is logged, with
its traceback unless it is a :class:`~notifier.errors.NotifierError` that
says all, counted (``on_restart``, the metric
``notifier_component_restarts_total{component}``), and ``run`` is called
again after a backoff (:func:`notifier.backoff.backoff_delay`), which starts
from the beginning again once the part has run for :data:`STEADY` seconds.

A part that fails more than :data:`MAX_RESTARTS` times within
:data:`RESTART_WINDOW` seconds cannot be kept up: the supervisor gives up on
it and calls ``on_give_up(name)``; ``notifier serve`` then stops everything
else cleanly and exits non-zero, so that systemd restarts the whole service.

Health (:meth:`Supervisor.health`)
----------------------------------

*live* answers "is this process worth keeping?". It is false only when
restarting the whole process is the remedy: a part was given up on, or a
part has been stalled for :data:`LIVE_STALL` seconds (a wedged thread,
which no restart from inside can free).

*ready* answers "is everything working right now?". It is false while the
service starts or stops, while any part is not running (starting, in a
restart backoff, given up on), is not ready yet, is stalled, or has been
restarted :data:`UNSTEADY` times or more within :data:`RESTART_WINDOW`
seconds. Every reason names the part.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..backoff import backoff_delay
from ..errors import NotifierError

log = logging.getLogger(__name__)

#: a part failing more often than this within RESTART_WINDOW seconds is given up on
MAX_RESTARTS = 5
RESTART_WINDOW = 300.0
#: the first restart waits between half and all of BACKOFF_BASE s, doubling up to BACKOFF_CAP
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
#: seconds a part must run before its next failure backs off from the start again
STEADY = 60.0
#: restarts within RESTART_WINDOW that make a running part count as not ready
UNSTEADY = 3
#: seconds a part may stay stalled before the process counts as not live
LIVE_STALL = 300.0


class Part(Protocol):
    """What the supervisor runs; see the module docstring for the optional members."""

    name: str

    def run(self, stopping: threading.Event) -> None: ...


class SimplePart:
    """A part made of functions: ``run(stopping)``, and optionally ``stalled()``."""

    def __init__(self, name: str, run: Callable[[threading.Event], None],
                 stalled: Callable[[], str | None] | None = None,
                 interrupt: Callable[[], None] | None = None):
        self.name = name
        self._run = run
        self._stalled = stalled
        self._interrupt = interrupt

    def run(self, stopping: threading.Event) -> None:
        self._run(stopping)

    def stalled(self) -> str | None:
        return self._stalled() if self._stalled is not None else None

    def interrupt(self) -> None:
        if self._interrupt is not None:
            self._interrupt()


class _Slot:
    """One part and what the supervisor knows about it."""

    def __init__(self, part: Part):
        self.part = part
        self.name = part.name
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        #: starting, running, backoff, stopped, or failed (given up on)
        self.state = "starting"
        self.restarts = 0
        self.recent: deque[float] = deque()
        self.attempt = 0
        self.last_error: str | None = None
        self.retry_at: float | None = None
        self.stalled_since: float | None = None


class Supervisor:
    """Runs parts, restarts them when they fail, and tells how they are.

    ``on_restart(name)`` is called for every failure (to count it);
    ``on_give_up(name)`` once a part has failed too often. The other
    arguments override the module's constants (tests use short ones).
    """

    def __init__(self, *, on_restart: Callable[[str], None] | None = None,
                 on_give_up: Callable[[str], None] | None = None,
                 max_restarts: int | None = None, window: float | None = None,
                 backoff_base: float | None = None, backoff_cap: float | None = None,
                 steady: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.on_restart = on_restart or (lambda name: None)
        self.on_give_up = on_give_up or (lambda name: None)
        # Read at construction, so a test can shorten the module's constants.
        self.max_restarts = MAX_RESTARTS if max_restarts is None else max_restarts
        self.window = RESTART_WINDOW if window is None else window
        self.backoff_base = BACKOFF_BASE if backoff_base is None else backoff_base
        self.backoff_cap = BACKOFF_CAP if backoff_cap is None else backoff_cap
        self.steady = STEADY if steady is None else steady
        self.clock = clock
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self.started = False
        #: set when stopping began: failures from then on are not restarted
        self.stopping = threading.Event()
        #: the name of the part given up on, if any
        self.gave_up: str | None = None

    # -- running -----------------------------------------------------------

    def add(self, part: Part) -> None:
        """Add a part (not started yet); names are unique."""
        if part.name in self._slots:
            raise ValueError(f"two parts named {part.name!r}")
        self._slots[part.name] = _Slot(part)

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def part(self, name: str) -> Any:
        return self._slots[name].part

    def start(self, names: Iterable[str] | None = None) -> None:
        """Start the named parts (all by default), each in a thread of its own."""
        for name in self.names if names is None else names:
            slot = self._slots[name]
            if slot.thread is not None:
                continue
            slot.thread = threading.Thread(target=self._keep, args=(slot,), name=name,
                                           daemon=True)
            slot.thread.start()
        self.started = True

    def stop(self, names: Iterable[str] | None = None, timeout: float = 30.0) -> list[str]:
        """Stop the named parts side by side (all by default); wait up to ``timeout`` s.

        Returns the names of the parts still running after that.
        """
        self.stopping.set()
        slots = [self._slots[n] for n in (self.names if names is None else names)]
        for slot in slots:
            slot.stopping.set()
            interrupt = getattr(slot.part, "interrupt", None)
            if interrupt is not None:
                try:
                    interrupt()
                except Exception:
                    log.exception("interrupting %s", slot.name)
        deadline = time.monotonic() + timeout
        late = []
        for slot in slots:
            if slot.thread is not None:
                slot.thread.join(max(0.0, deadline - time.monotonic()))
                if slot.thread.is_alive():
                    late.append(slot.name)
                    log.error("%s did not stop within %.0f s", slot.name, timeout)
        return late

    def _keep(self, slot: _Slot) -> None:
        """Run one part until it is stopped or given up on."""
        while True:
            self._set(slot, "running")
            began = self.clock()
            failure: BaseException | None = None
            try:
                slot.part.run(slot.stopping)
            except BaseException as exc:  # a supervisor must outlive its parts' bugs
                failure = exc
            if slot.stopping.is_set():
                if failure is not None:
                    log.error("%s failed while stopping", slot.name, exc_info=failure)
                self._set(slot, "stopped")
                return
            if self.stopping.is_set():
                # The service stops, this part's turn has not come yet, and it ended on its
                # own (a sender process that left after its SIGTERM grace): not restarted.
                log.warning("%s ended before its turn to stop, while the service stops: %s",
                            slot.name, _problem(failure))
                self._set(slot, "stopped")
                return
            if not self._failed(slot, failure, ran=self.clock() - began):
                return
            assert slot.retry_at is not None
            if slot.stopping.wait(max(0.0, slot.retry_at - self.clock())):
                self._set(slot, "stopped")
                return

    def _failed(self, slot: _Slot, failure: BaseException | None, ran: float) -> bool:
        """Log and count a failure; False when the part is given up on."""
        problem = _problem(failure)
        now = self.clock()
        with self._lock:
            slot.restarts += 1
            slot.last_error = problem
            slot.recent.append(now)
            while slot.recent and slot.recent[0] < now - self.window:
                slot.recent.popleft()
            failures = len(slot.recent)
            if ran >= self.steady:
                slot.attempt = 0
        try:
            self.on_restart(slot.name)
        except Exception:
            log.exception("counting the restart of %s", slot.name)
        # A NotifierError says what went wrong; anything else is a bug: show it whole.
        trace = failure if failure is not None and not isinstance(failure, NotifierError) \
            else None
        if failures > self.max_restarts:
            with self._lock:
                slot.state, slot.retry_at = "failed", None
                first = self.gave_up is None
                if first:
                    self.gave_up = slot.name
            log.critical("%s failed %d times within %.0f s (%s); giving up on it: notifier "
                         "serve stops, to be restarted whole", slot.name, failures,
                         self.window, problem, exc_info=trace)
            if first:
                try:
                    self.on_give_up(slot.name)
                except Exception:
                    log.exception("giving up on %s", slot.name)
            return False
        delay = backoff_delay(slot.attempt, self.backoff_base, self.backoff_cap)
        with self._lock:
            slot.attempt += 1
            slot.state = "backoff"
            slot.retry_at = now + delay
        log.error("%s failed (%s); starting it again in %.1f s (failure %d of %d allowed "
                  "within %.0f s)", slot.name, problem, delay, failures, self.max_restarts,
                  self.window, exc_info=trace)
        return True

    def _set(self, slot: _Slot, state: str) -> None:
        with self._lock:
            slot.state = state
            if state != "backoff":
                slot.retry_at = None

    # -- health ------------------------------------------------------------

    def health(self, kind: str) -> tuple[bool, dict[str, Any]]:
        """``kind`` "live" or "ready": whether it holds, and a report naming what fails."""
        if kind not in ("live", "ready"):
            raise ValueError(f"health kind must be 'live' or 'ready', not {kind!r}")
        now = self.clock()
        parts: dict[str, dict[str, Any]] = {}
        not_ready: dict[str, str] = {}
        not_live: dict[str, str] = {}
        for slot in list(self._slots.values()):
            info, why_not_ready, why_not_live = self._examine(slot, now)
            parts[slot.name] = info
            if why_not_ready:
                not_ready[slot.name] = why_not_ready
            if why_not_live:
                not_live[slot.name] = why_not_live
        live = not not_live
        if kind == "live":
            ok, failing = live, not_live
            status = "ok" if ok else "failed"
        else:
            failing = not_ready
            if self.stopping.is_set():
                status = "stopping"
            elif not self.started:
                status = "starting"
            elif not_live:
                status = "failed"
            elif failing:
                status = "starting" if all(why == "starting" for why in failing.values()) \
                    else "degraded"
            else:
                status = "ok"
            ok = status == "ok"
        return ok, {"status": status, "failing": failing, "parts": parts}

    def _examine(self, slot: _Slot, now: float) -> tuple[dict[str, Any], str | None,
                                                          str | None]:
        with self._lock:
            state, restarts, last_error = slot.state, slot.restarts, slot.last_error
            retry_at = slot.retry_at
            recent = sum(1 for t in slot.recent if t >= now - self.window)
        info: dict[str, Any] = {"state": state, "restarts": restarts}
        if last_error:
            info["last_error"] = last_error
        why_not_ready: str | None = None
        why_not_live: str | None = None
        if state == "backoff":
            why_not_ready = (f"failed ({last_error}); restarting in "
                             f"{max(0.0, (retry_at or now) - now):.1f} s")
        elif state == "failed":
            why_not_ready = why_not_live = (f"failed {recent} times within "
                                            f"{self.window:.0f} s ({last_error}); given up")
        elif state == "starting":
            why_not_ready = "starting"
        elif state == "stopped":
            why_not_ready = "stopped"
        elif state == "running":
            if getattr(slot.part, "ready", True) is False:
                why_not_ready = "starting"
            stalled = self._stalled(slot)
            if stalled:
                info["stalled"] = stalled
                why_not_ready = f"stalled: {stalled}"
                slot.stalled_since = slot.stalled_since or now
                if now - slot.stalled_since >= LIVE_STALL:
                    why_not_live = f"stalled for {now - slot.stalled_since:.0f} s: {stalled}"
            else:
                slot.stalled_since = None
            if why_not_ready is None and recent >= UNSTEADY:
                why_not_ready = (f"restarted {recent} times within {self.window:.0f} s "
                                 f"(last: {last_error})")
        info["recent_restarts"] = recent
        return info, why_not_ready, why_not_live

    @staticmethod
    def _stalled(slot: _Slot) -> str | None:
        stalled = getattr(slot.part, "stalled", None)
        if stalled is None:
            return None
        try:
            return stalled()
        except NotifierError as exc:
            return f"cannot tell whether it progresses: {exc}"
        except Exception as exc:  # health must answer even when a check has a bug
            log.exception("checking whether %s is stalled", slot.name)
            return f"cannot tell whether it progresses: {type(exc).__name__}: {exc}"


def _problem(failure: BaseException | None) -> str:
    """What went wrong, in one line: a NotifierError says it all; anything else, its type too."""
    if failure is None:
        return "returned although nobody asked it to stop"
    if isinstance(failure, NotifierError):
        return str(failure)
    return f"{type(failure).__name__}: {failure}"
