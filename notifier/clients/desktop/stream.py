"""Reading the person's live stream (``GET /users/<user>/stream``) on a thread of its own.

The reader keeps the last event id, and resumes after it with
``Last-Event-ID`` whenever it connects again (after a server restart,
network loss, sleep, or a restart of the app: the id is kept on disk by
:class:`LastId`), so that nothing is missed and nothing comes twice. Failed
connections are retried with a growing delay (1 s up to a minute);
:meth:`StreamReader.reconnect` cuts the wait short, for when the network
comes back.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

#: seconds without a byte (the server sends a keep-alive every 15 s) before reconnecting
READ_TIMEOUT = 45.0
FIRST_DELAY = 1.0
MAX_DELAY = 60.0


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


class LastId:
    """The id of the last event handled, kept in a small JSON file per server and user."""

    def __init__(self, path: Path, source: str):
        self.path = path
        self.source = source

    def load(self) -> int | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("source") != self.source:
            return None  # another server or user: start afresh
        value = data.get("last_id")
        return value if isinstance(value, int) and value >= 0 else None

    def save(self, last_id: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".desktop-state-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"source": self.source, "last_id": last_id}, out)
        os.replace(tmp, self.path)


def events(lines: Iterator[str]) -> Iterator[tuple[str | None, str, str | None]]:
    """``(id, event, data)`` of each event in Server-Sent Events ``lines``.

    An event with an ``id`` and no data (the stream's opening line) comes as
    ``(id, "", None)``: it only moves the last id.
    """
    event_id: str | None = None
    name = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data or event_id is not None:
                yield event_id, name or "message", "\n".join(data) if data else None
            event_id, name, data = None, "", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "id":
            event_id = value
        elif key == "event":
            name = value
        elif key == "data":
            data.append(value)


class StreamReader:
    """Reads the stream until :meth:`stop`, calling ``on_event(id, payload)`` for each
    notification and ``on_state(connected, why)`` when the connection comes or goes
    (both on this reader's thread)."""

    def __init__(self, url: str, token: str, after: int | None, *,
                 on_event: Callable[[int, dict[str, Any]], None],
                 on_mark: Callable[[int], None],
                 on_state: Callable[[bool, str], None]):
        self.url = url
        self.token = token
        self.last = after
        self.on_event = on_event
        self.on_mark = on_mark
        self.on_state = on_state
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._response: httpx.Response | None = None
        self._response_closed_by_us = False
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)

    def start(self) -> StreamReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._abort()

    def reconnect(self) -> None:
        """Connect again now: end the wait before a retry, or the current connection."""
        self._wake.set()
        self._abort()

    def _abort(self) -> None:
        response = self._response
        if response is not None:
            self._response_closed_by_us = True
            try:
                response.close()
            except Exception:  # closing from another thread: whatever it raises, it is closed
                pass

    def _run(self) -> None:
        delay = FIRST_DELAY
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        with httpx.Client(timeout=timeout, headers={"Accept": "text/event-stream"}) as client:
            while not self._stopping.is_set():
                got_any = False
                try:
                    got_any = self._read(client)
                    why = "the server ended the stream"
                except httpx.HTTPStatusError as exc:
                    why = f"the server answered {exc.response.status_code}"
                except (httpx.HTTPError, OSError, ValueError) as exc:
                    why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                except Exception as exc:  # whatever a response closed under it raises
                    if not self._response_closed_by_us:
                        log.exception("reading the stream")
                    why = f"{type(exc).__name__}: {exc}"
                if self._stopping.is_set():
                    return
                if self._response_closed_by_us:  # reconnect(): at once, from the last id
                    self._response_closed_by_us = False
                    self._wake.clear()
                    log.debug("the stream: connecting again, as asked")
                    continue
                if got_any:
                    delay = FIRST_DELAY
                self.on_state(False, why)
                log.debug("the stream: %s; trying again in %g s", why, delay)
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, MAX_DELAY)

    def _read(self, client: httpx.Client) -> bool:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last is not None:
            headers["Last-Event-ID"] = str(self.last)
        with client.stream("GET", self.url, headers=headers) as response:
            self._response = response
            try:
                response.raise_for_status()
                self.on_state(True, "connected")
                for event_id, name, data in events(response.iter_lines()):
                    if self._stopping.is_set():
                        return True
                    number = int(event_id) if event_id and event_id.isdigit() else None
                    if name == "notification" and data is not None and number is not None:
                        payload = json.loads(data)
                        if isinstance(payload, dict) and (self.last is None
                                                          or number > self.last):
                            self.last = number
                            self.on_event(number, payload)
                    elif number is not None and data is None:
                        if self.last is None or number > self.last:
                            self.last = number
                            self.on_mark(number)
                return True
            finally:
                self._response = None
