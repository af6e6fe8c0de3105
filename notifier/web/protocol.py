"""uvicorn's HTTP/1.1 protocol (h11), with the bounds it lacks.

* **Request timeout**: uvicorn times out idle keep-alive connections, but not
  a client that sends its request slowly: headers one byte at a time, or a
  body that never ends. Here each request must arrive whole, headers and
  body, within ``request_timeout`` seconds of its first byte (of the
  connection, for the first request). A client still sending its headers
  then gets a 408; one still sending a body has its connection closed.
* **No access log**: request lines carry feed tokens in their query strings;
  none is logged, whatever the logging configuration.
* **Lingering close**: when the server closes a connection while the client
  is still sending (a 413 before the body was read, a request refused
  mid-way), closing at once would make the kernel reset the connection and
  the client could lose the answer. The connection is half-closed instead,
  what still arrives is read and dropped, and it is closed after
  :data:`LINGER` seconds or when the client closes its side.
* **Abort**: the application finds ``scope["extensions"]["notifier.abort"]``,
  which drops the connection at once. A live stream uses it to cut off a
  client that stopped reading, whose sends would otherwise wait forever.

Header size is bounded by h11 (``h11_max_incomplete_event_size``); request
framing (Content-Length, chunked) is h11's, which refuses negative,
non-numeric and conflicting lengths.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")


#: seconds a closed connection still reads (and drops) what the client sends
LINGER = 2.0


class _LingeringTransport:
    """The connection's transport, with the lingering :meth:`close` of the module docstring."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedH11Protocol):
        self._transport = transport
        self._protocol = protocol
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        transport = self._transport
        if not self._protocol.client_still_sending() or not transport.can_write_eof():
            transport.close()
            return
        self._protocol.lingering = True
        transport.write_eof()  # once what was written is out
        transport.resume_reading()
        self._protocol.loop.call_later(LINGER, transport.close)

    def abort(self) -> None:
        self._closing = True
        self._transport.abort()


class BoundedH11Protocol(H11Protocol):
    """One HTTP/1.1 connection; subclass it with ``request_timeout`` set (see :func:`protocol`)."""

    request_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.access_log = False
        self._request_timer: asyncio.TimerHandle | None = None
        #: closed by us; what the client still sends is dropped
        self.lingering = False
        app = self.app

        async def with_abort(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}),
                                   "notifier.abort": self._abort}
            await app(scope, receive, send)

        self.app = with_abort

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]
        self._arm()

    def client_still_sending(self) -> bool:
        """Whether the client is in the middle of a request (so closing now would reset)."""
        state = self.conn.their_state
        return state is h11.SEND_BODY or state is h11.ERROR or (
            state is h11.IDLE and bool(self.conn.trailing_data[0]))

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self._request_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of a request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # the request is in (or the connection is done for)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request already buffered starts its own clock.
        if (self._request_timer is None and self.conn.their_state is h11.IDLE
                and self.conn.trailing_data[0]):
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._request_timer = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _timed_out(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        log.debug("closing a connection whose request took over %.0f s", self.request_timeout)
        if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()  # after the 408 went out
        else:
            self._abort()  # a body cut short: whatever answer was under way goes too

    def _abort(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()


def protocol(request_timeout: float) -> type[BoundedH11Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with this timeout."""
    return type("BoundedH11", (BoundedH11Protocol,), {"request_timeout": request_timeout})
