"""A Server-Sent Events client for tests: httpx, read in a thread, events parsed as they come."""

from __future__ import annotations

import json
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    id: int | None
    event: str | None
    data: Any
    comment: str | None = None
    retry: int | None = None


class EventStream:
    """``GET url`` as an event stream; :meth:`events` returns what arrived."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._context = self._client.stream("GET", url, headers=headers)
        self.response = self._context.__enter__()
        self.status = self.response.status_code
        self.headers = self.response.headers
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self.ended = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.body = self.response.read()
            self.ended.set()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if fields:
                        self._queue.put(Event(
                            int(fields["id"]) if "id" in fields else None, fields.get("event"),
                            json.loads(fields["data"]) if "data" in fields else None,
                            fields.get(":"), int(fields["retry"]) if "retry" in fields else None))
                    fields = {}
                elif line.startswith(":"):
                    fields[":"] = line[1:].strip()
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            self._queue.put(None)

    def events(self, n: int, timeout: float = 10, *, notifications_only: bool = True
               ) -> list[Event]:
        """The next ``n`` events (notifications only, unless told otherwise)."""
        got: list[Event] = []
        while len(got) < n:
            try:
                event = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {n} events: {got}") from None
            if event is None:
                raise AssertionError(f"the stream ended after {len(got)} of {n} events: {got}")
            if notifications_only and event.event != "notification":
                continue
            got.append(event)
        return got

    def pending(self) -> list[Event]:
        """What arrived and was not taken yet, without waiting."""
        out = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return out
            if event is not None:
                out.append(event)

    def close(self) -> None:
        # Shut the socket down first: closing it while the reader thread waits in recv()
        # would leave the connection open until something arrives.
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._context.__exit__(None, None, None)
        self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
