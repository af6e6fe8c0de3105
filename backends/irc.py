"""IRC: private messages to the user's nick, over one persistent connection.

How a line travels
------------------

One background thread owns the connection (an ``irc`` library
:class:`~irc.client.Reactor` and its :class:`~irc.client.ServerConnection`),
reads from the server and writes every line. :meth:`IrcBackend.send` only
puts the line on a queue, wakes that thread and waits.

The thread writes queued lines as fast as the token bucket (``[irc] rate``
lines per second, bursts of ``[irc] burst``) allows, then follows each batch
with ``PING :<token>`` (the PING takes no token: one per batch, not per
line). The server answers commands in order, so:

* ``PONG <token>`` means every line of the batch was accepted;
* ``401 ERR_NOSUCHNICK`` for a nick before that PONG means the line to that
  nick was refused: :meth:`~IrcBackend.send` raises
  :class:`~notifier.errors.PermanentDeliveryError`.

In the common case ``send`` returns after one round trip to the server. It
waits at most ``send_timeout`` seconds (5 by default):

* a line that is still queued then (not connected, or held back by the rate
  limit) is taken off the queue and ``send`` raises
  :class:`~notifier.errors.TemporaryDeliveryError`, so the outbox retries it;
* a line that was written but not yet confirmed counts as delivered.

When no reconnect attempt is due within the wait, ``send`` raises the
temporary error at once instead of waiting for nothing.

Reconnects and lost lines
-------------------------

A dropped connection is retried with exponential backoff and jitter (from
``reconnect_base`` up to ``reconnect_max`` seconds). A line leaves the queue
only once it is written to the socket, and stays tracked until its PONG: lines
written but unconfirmed when the connection drops go back to the front of the
queue and are written again after the reconnect. A line the server had already
relayed just before the drop can therefore arrive twice; none is lost while
the backend runs. Lines still queued or unconfirmed when the backend is closed
fail with a temporary error; a later ``send`` connects again.

Registration
------------

A nick already in use (433) or held (437) is retried as ``nick_``,
``nick__``, and so on. Registered under such a stand-in, the connection asks
for ``[irc] nick`` again every :data:`NICK_RETRY` seconds and takes it back
once it is free: a process killed while it held the connection may leave it
open on the server, nick and all, for a while.

With ``sasl_username`` and ``sasl_password`` the connection asks for the
``sasl`` capability before registering and logs in with SASL PLAIN; a server
that refuses SASL, or registers the connection without it, is disconnected
rather than used without the account.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import irc.client
import irc.strings
from jaraco.stream import buffer as irc_buffer

from ..backoff import backoff_delay
from ..config import Config
from ..errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from ..notification import Notification
from .base import Backend
from .tokenbucket import TokenBucket

log = logging.getLogger(__name__)

#: what a nick may look like (RFC 2812 letters, digits and specials); anything
#: else could change the meaning of the PRIVMSG command
_NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*$")
#: IRC lines are at most 512 bytes with CR LF
_MAX_COMMAND_BYTES = 512
#: how many underscores to append to a nick in use before giving up
_MAX_NICK_TRIES = 8
#: SASL payloads go in chunks of this many base64 characters
_SASL_CHUNK = 400

CONNECT_TIMEOUT = 10.0
#: a write blocked this long means the server stopped reading
WRITE_TIMEOUT = 30.0
#: registration (NICK, USER, SASL) must finish within this many seconds
REGISTER_TIMEOUT = 30.0
#: after this many idle seconds we PING the server ...
KEEPALIVE_IDLE = 90.0
#: ... and give up on it when nothing came back this much later
KEEPALIVE_TIMEOUT = 60.0
#: seconds between two requests for ``[irc] nick`` while registered under a stand-in
NICK_RETRY = 10.0

# The states of one line.
QUEUED, WRITING, WRITTEN, DELIVERED, FAILED = "queued", "writing", "written", "delivered", \
    "failed"

SocketOpener = Callable[[tuple[str, int]], socket.socket]


@dataclass(eq=False)
class _Line:
    nick: str
    text: str
    #: when the sender stops waiting
    deadline: float = 0.0
    state: str = QUEUED
    #: the PING token that follows the batch this line was written in
    token: str | None = None
    error: DeliveryError | None = None
    cause: BaseException | None = None
    #: the sender stopped waiting after the line was written: keep it until confirmed
    abandoned: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class IrcBackend(Backend):
    """Sends each notification as one PRIVMSG to ``notification.address`` (a nick).

    ``send_timeout`` bounds how long :meth:`send` waits; ``reconnect_base``
    and ``reconnect_max`` shape the reconnect backoff. ``ssl_context`` replaces
    the system's default trust for ``[irc] tls``. ``connect_factory`` opens the
    TCP connection (``(host, port) -> socket``), for example to bind a source
    address; TLS and SASL are layered on top of what it returns.
    """

    name = "irc"
    max_length = 450
    single_line = True
    markup = None

    def __init__(self, config: Config, *, send_timeout: float = 5.0,
                 reconnect_base: float = 1.0, reconnect_max: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None,
                 connect_factory: SocketOpener | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(config)
        self.settings = config.irc
        self.send_timeout = send_timeout
        self.reconnect_base = reconnect_base
        self.reconnect_max = reconnect_max
        self._ssl_context = ssl_context
        self._connect_factory = connect_factory
        self._clock = clock
        self._bucket = TokenBucket(self.settings.rate, self.settings.burst, clock=clock)
        self._tokens = (f"notifier-{n}" for n in itertools.count(1))
        self._lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._reset()

    def _reset(self) -> None:
        """Fresh state for one run of the background thread."""
        self._queue: deque[_Line] = deque()
        self._inflight: deque[_Line] = deque()
        self._registered = threading.Event()
        self._stopping = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._reactor: irc.client.Reactor | None = None
        self._conn: irc.client.ServerConnection | None = None
        # Owned by the background thread.
        self._attempt = 0
        #: when the next connect attempt is due; None while connecting or connected
        self._retry_at: float | None = None
        self._connected_at = 0.0
        self._last_recv = 0.0
        self._keepalive_sent = False
        self._nick_tries = 0
        #: when to ask for ``[irc] nick`` again; None while registered under it
        self._nick_retry_at: float | None = None
        self._sasl_done = False
        self._last_error = "not connected yet"
        self._last_cause: BaseException | None = None
        #: why the connection is going down, when we (or the server's ERROR) said so
        self._drop_reason: str | None = None

    # -- public API -------------------------------------------------------

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def nick(self) -> str | None:
        """The nick we are registered with, or None while not registered."""
        conn = self._conn
        return conn.get_nickname() if conn is not None and self._registered.is_set() else None

    def wait_registered(self, timeout: float) -> bool:
        """Wait until the connection is registered; say whether it is."""
        return self._registered.wait(timeout)

    def setup(self) -> None:
        """Start the background thread, which connects to ``[irc] host``."""
        with self._setup_lock:
            if self._thread is not None:
                return
            if not self.settings.host:
                raise ConfigError(f"{self._source()}: '[irc] host' is not set; the irc "
                                  "destination needs a server to connect to")
            if bool(self.settings.sasl_username) != bool(self.settings.sasl_password):
                raise ConfigError(f"{self._source()}: '[irc] sasl_username' and "
                                  "'[irc] sasl_password' must be set together")
            self._reset()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._reactor = irc.client.Reactor()
            self._conn = self._reactor.server()
            # A server may send bytes that are not UTF-8; they must not stop the thread.
            self._conn.buffer_class = irc_buffer.LenientDecodingLineBuffer
            for event, handler in [
                ("all_raw_messages", self._on_raw), ("welcome", self._on_welcome),
                ("disconnect", self._on_disconnect), ("pong", self._on_pong),
                ("nick", self._on_nick),
                ("nosuchnick", self._on_nosuchnick), ("nicknameinuse", self._on_nick_in_use),
                ("unavailresource", self._on_nick_in_use),
                ("erroneusnickname", self._on_bad_nick), ("error", self._on_error),
                ("cap", self._on_cap), ("authenticate", self._on_authenticate),
                ("saslsuccess", self._on_sasl_success), ("saslfail", self._on_sasl_fail),
                ("sasltoolong", self._on_sasl_fail), ("saslaborted", self._on_sasl_fail),
                ("nicklocked", self._on_sasl_fail),
            ]:
                self._reactor.add_global_handler(event, handler)
            self._thread = threading.Thread(target=self._run, name=f"irc {self.server}",
                                            daemon=True)
            self._thread.start()

    def send(self, notification: Notification) -> None:
        """Send one line; see the module docstring for what the outcome means."""
        line = self._line_for(notification)
        if self._thread is None:
            self.setup()
        deadline = line.deadline = self._clock() + self.send_timeout
        with self._lock:
            if self._closing:
                raise TemporaryDeliveryError(
                    f"IRC backend for {self.server} is closing") from \
                    irc.client.ServerNotConnectedError("closing")
            if (not self._registered.is_set() and self._retry_at is not None
                    and self._retry_at > deadline):
                raise TemporaryDeliveryError(
                    f"not connected to IRC server {self.server} ({self._last_error}); "
                    f"next attempt in {self._retry_at - self._clock():.1f} s"
                ) from self._cause()
            self._queue.append(line)
        self._wake()
        line.done.wait(self.send_timeout)
        with self._lock:
            if line.state == DELIVERED:
                return
            if line.state == FAILED:
                assert line.error is not None
                raise line.error from line.cause
            if line.state == QUEUED:
                self._queue.remove(line)
                if self._registered.is_set():
                    raise TemporaryDeliveryError(
                        f"line to '{line.nick}' still queued after {self.send_timeout:g} s "
                        f"([irc] rate = {self.settings.rate:g} lines per second, "
                        f"{len(self._queue)} more queued)")
                raise TemporaryDeliveryError(
                    f"not connected to IRC server {self.server} within "
                    f"{self.send_timeout:g} s: {self._last_error}") from self._cause()
            # Written, not confirmed yet: it is the server's now.
            line.abandoned = True
        log.info("line to %s written to %s, no PONG within %g s", line.nick, self.server,
                 self.send_timeout)

    def close(self) -> None:
        """Say QUIT and stop the thread; lines still queued fail with a temporary error.

        A later :meth:`send` connects again.
        """
        with self._setup_lock:
            thread = self._thread
            if thread is None:
                return
            with self._lock:
                self._closing = True
            self._stopping = True
            self._wake()
            thread.join(WRITE_TIMEOUT + 5)
            for sock in (self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()
            self._thread = None
            with self._lock:
                self._closing = False

    # -- checks -----------------------------------------------------------

    def _source(self) -> str:
        return self.config.sources[-1] if self.config.sources else "<config>"

    def _line_for(self, notification: Notification) -> _Line:
        nick = notification.address
        if not _NICK.match(nick or ""):
            raise PermanentDeliveryError(f"'{nick}' is not a valid IRC nick "
                                         f"(user {notification.user})")
        text = notification.content.get("line")
        if not text:
            raise PermanentDeliveryError(f"notification {notification.msg_id} for irc has no "
                                         "content['line'] to send")
        if any(c in text for c in "\r\n\0"):
            raise PermanentDeliveryError(f"line for '{nick}' contains CR, LF or NUL, which "
                                         "IRC cannot carry")
        size = len(f"PRIVMSG {nick} :{text}\r\n".encode())
        if size > _MAX_COMMAND_BYTES:
            raise PermanentDeliveryError(
                f"line for '{nick}' makes a {size}-byte PRIVMSG; IRC allows "
                f"{_MAX_COMMAND_BYTES} bytes (line limit {self.max_length} bytes)")
        return _Line(nick, text)

    def _cause(self) -> BaseException:
        """What the last connection problem was, as an exception."""
        return self._last_cause or irc.client.ServerNotConnectedError(self._last_error)

    # -- the background thread ------------------------------------------

    def _wake(self) -> None:
        try:
            if self._wake_w is not None:
                self._wake_w.send(b"\0")
        except OSError:
            # Full: the thread has wake-ups pending anyway. Closed: it is gone.
            pass

    def _run(self) -> None:
        self._retry_at = self._clock()
        try:
            while not self._stopping:
                try:
                    self._step()
                except Exception as exc:
                    # A bug must not end deliveries for good: start over on a new connection.
                    log.exception("IRC server %s: unexpected error; reconnecting", self.server)
                    assert self._conn is not None
                    if self._conn.is_connected():
                        self._drop(f"unexpected error: {exc!r}")
                    elif self._retry_at is None:
                        self._set_error(f"unexpected error: {exc!r}", exc)
                        self._schedule_reconnect()
        finally:
            self._shutdown()

    def _step(self) -> None:
        now = self._clock()
        if self._retry_at is not None and now >= self._retry_at:
            self._connect()
        self._check_liveness(now)
        self._pump()
        self._wait_and_read()

    def _wait_and_read(self) -> None:
        assert self._conn is not None and self._wake_r is not None
        sock = self._conn.socket if self._conn.is_connected() else None
        readers = [self._wake_r] + ([sock] if sock is not None else [])
        readable, _, _ = select.select(readers, [], [], self._next_timeout())
        if self._wake_r in readable:
            try:
                while self._wake_r.recv(4096):
                    pass
            except BlockingIOError:
                pass
        if sock is not None and sock in readable:
            assert self._reactor is not None
            self._reactor.process_data([sock])
            # TLS can hold decrypted bytes that select() does not see.
            while (isinstance(self._conn.socket, ssl.SSLSocket)
                   and self._conn.socket.pending()):
                self._reactor.process_data([self._conn.socket])

    def _next_timeout(self) -> float:
        timeout = 5.0
        if self._retry_at is not None:
            timeout = min(timeout, self._retry_at - self._clock())
        with self._lock:
            waiting = bool(self._queue)
        if waiting and self._registered.is_set():
            timeout = min(timeout, self._bucket.delay())
        if self._nick_retry_at is not None:
            timeout = min(timeout, self._nick_retry_at - self._clock())
        return max(timeout, 0.0)

    def _set_error(self, text: str, cause: BaseException | None) -> None:
        self._last_error = text
        self._last_cause = cause

    def _connect(self) -> None:
        assert self._conn is not None
        self._retry_at = None
        self._nick_tries = 0
        self._nick_retry_at = None
        self._sasl_done = False
        self._keepalive_sent = False
        self._drop_reason = None
        settings = self.settings
        try:
            self._conn.connect(settings.host, settings.port, settings.nick,
                               connect_factory=self._open_socket)
        except irc.client.ServerConnectionError as exc:
            self._set_error(f"cannot connect: {exc.__cause__ or exc}", exc)
            self._schedule_reconnect()
            return
        self._connected_at = self._last_recv = self._clock()
        log.info("connected to IRC server %s", self.server)

    def _open_socket(self, address: tuple[str, int]) -> socket.socket:
        if self._connect_factory is not None:
            sock = self._connect_factory(address)
        else:
            sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
        try:
            if self.settings.tls:
                context = self._ssl_context or ssl.create_default_context()
                sock.settimeout(CONNECT_TIMEOUT)
                sock = context.wrap_socket(sock, server_hostname=address[0])
            sock.settimeout(WRITE_TIMEOUT)
            if self.settings.sasl_username:
                # Asking for a capability first holds registration until CAP END.
                sock.sendall(b"CAP REQ :sasl\r\n")
        except BaseException:
            sock.close()
            raise
        return sock

    def _schedule_reconnect(self) -> None:
        delay = backoff_delay(self._attempt, self.reconnect_base, self.reconnect_max)
        self._attempt += 1
        self._retry_at = retry_at = self._clock() + delay
        log.warning("IRC server %s: %s; reconnecting in %.1f s", self.server, self._last_error,
                    delay)
        with self._lock:
            # Senders that would give up before the next attempt learn it now.
            for line in [x for x in self._queue if not x.abandoned and x.deadline < retry_at]:
                self._queue.remove(line)
                self._finish(line, FAILED, TemporaryDeliveryError(
                    f"not connected to IRC server {self.server} ({self._last_error}); "
                    f"next attempt in {delay:.1f} s"), self._cause())

    def _drop(self, reason: str) -> None:
        """Hang up on purpose, saying why; a reconnect follows."""
        assert self._conn is not None
        self._drop_reason = reason
        self._conn.disconnect(reason)

    def _check_liveness(self, now: float) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected():
            return
        if not self._registered.is_set():
            if now - self._connected_at > REGISTER_TIMEOUT:
                self._drop(f"registration not finished after {REGISTER_TIMEOUT:g} s")
            return
        idle = now - self._last_recv
        if idle > KEEPALIVE_IDLE + KEEPALIVE_TIMEOUT:
            self._drop(f"no reply from the server for {idle:.0f} s")
        elif idle > KEEPALIVE_IDLE and not self._keepalive_sent:
            self._keepalive_sent = True
            conn.ping("keepalive")
        if self._nick_retry_at is not None and now >= self._nick_retry_at:
            # A 433 answer is ignored once registered (see _on_nick_in_use).
            self._nick_retry_at = now + NICK_RETRY
            conn.nick(self.settings.nick)

    def _pump(self) -> None:
        """Write queued lines while registered and the bucket has tokens."""
        conn = self._conn
        assert conn is not None
        token: str | None = None
        while True:
            with self._lock:
                if (self._stopping or not self._registered.is_set() or not self._queue
                        or not self._bucket.try_take()):
                    break
                line = self._queue[0]
                line.state = WRITING
            conn.privmsg(line.nick, line.text)
            with self._lock:
                if not conn.is_connected():
                    # The write failed and the connection is gone; the line is
                    # still first in the queue.
                    line.state = QUEUED
                    return
                token = token or next(self._tokens)
                self._queue.popleft()
                line.state = WRITTEN
                line.token = token
                self._inflight.append(line)
        if token is not None:
            conn.ping(token)

    def _shutdown(self) -> None:
        conn = self._conn
        if conn is not None and conn.is_connected():
            self._drop("notifier stopping")
        with self._lock:
            pending = list(self._inflight) + list(self._queue)
            self._inflight.clear()
            self._queue.clear()
            lost = sum(1 for line in pending if line.abandoned)
            for line in pending:
                self._finish(line, FAILED, TemporaryDeliveryError(
                    f"IRC backend for {self.server} closed before the server confirmed the "
                    f"line to '{line.nick}'"), irc.client.ServerNotConnectedError("closed"))
        if lost:
            log.warning("IRC backend for %s closed with %d written line(s) never confirmed "
                        "by the server", self.server, lost)

    @staticmethod
    def _finish(line: _Line, state: str, error: DeliveryError | None = None,
                cause: BaseException | None = None) -> None:
        line.state = state
        line.error = error
        line.cause = cause
        line.done.set()

    # -- event handlers (run on the background thread) ------------------

    def _on_raw(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        self._last_recv = self._clock()
        self._keepalive_sent = False

    def _on_welcome(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if self.settings.sasl_username and not self._sasl_done:
            self._drop("the server registered us without SASL login (it does not "
                       "support the sasl capability)")
            return
        self._attempt = 0
        self._registered.set()
        log.info("registered on IRC server %s as %s", self.server, conn.get_nickname())
        if not self._is_own_nick(conn.get_nickname()):
            self._nick_retry_at = self._clock() + NICK_RETRY

    def _is_own_nick(self, nick: str) -> bool:
        return irc.strings.lower(nick) == irc.strings.lower(self.settings.nick)

    def _on_nick(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        # The library has followed the change already: get_nickname() is the new nick.
        if self._nick_retry_at is not None and self._is_own_nick(conn.get_nickname()):
            self._nick_retry_at = None
            log.info("IRC server %s: took back nick %s", self.server, conn.get_nickname())

    def _on_disconnect(self, conn: irc.client.ServerConnection,
                       event: irc.client.Event) -> None:
        was_registered = self._registered.is_set()
        self._registered.clear()
        with self._lock:
            # Unconfirmed lines go first again, in the order they were written.
            requeued = len(self._inflight)
            for line in self._inflight:
                line.state = QUEUED
                line.token = None
            self._queue.extendleft(reversed(self._inflight))
            self._inflight.clear()
        if self._drop_reason:
            self._set_error(self._drop_reason, irc.client.IRCError(self._drop_reason))
            self._drop_reason = None
        else:
            what = "connection lost" if was_registered else \
                "the server closed the connection during registration"
            self._set_error(what, irc.client.ServerConnectionError(
                f"{what}: {event.arguments[0] if event.arguments else ''}"))
        if requeued:
            log.warning("IRC server %s: %s with %d unconfirmed line(s); they will be sent "
                        "again", self.server, self._last_error, requeued)
        if not self._stopping:
            self._schedule_reconnect()

    def _on_pong(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        token = event.arguments[-1] if event.arguments else None
        with self._lock:
            last = max((i for i, line in enumerate(self._inflight) if line.token == token),
                       default=None)
            if last is None:
                return
            for _ in range(last + 1):
                self._finish(self._inflight.popleft(), DELIVERED)

    def _on_nosuchnick(self, conn: irc.client.ServerConnection,
                       event: irc.client.Event) -> None:
        nick = irc.strings.lower(event.arguments[0]) if event.arguments else ""
        with self._lock:
            for line in self._inflight:
                if irc.strings.lower(line.nick) == nick:
                    self._inflight.remove(line)
                    reply = " ".join(event.arguments)
                    self._finish(line, FAILED, PermanentDeliveryError(
                        f"IRC server {self.server} has no user with nick '{line.nick}' "
                        "(401 No such nick)"), irc.client.IRCError(f"401 {reply}"))
                    return
        log.info("IRC server %s: 401 for '%s' matches no line in flight", self.server, nick)

    def _on_nick_in_use(self, conn: irc.client.ServerConnection,
                        event: irc.client.Event) -> None:
        if self._registered.is_set():
            return
        self._nick_tries += 1
        if self._nick_tries > _MAX_NICK_TRIES:
            self._drop(f"nick '{self.settings.nick}' and {_MAX_NICK_TRIES} variants are in use")
            return
        nick = self.settings.nick + "_" * self._nick_tries
        log.info("IRC server %s: nick %s in use, trying %s", self.server,
                 event.arguments[0] if event.arguments else "", nick)
        conn.nick(nick)

    def _on_bad_nick(self, conn: irc.client.ServerConnection,
                     event: irc.client.Event) -> None:
        if self._registered.is_set():
            return
        detail = event.arguments[-1] if event.arguments else ""
        self._drop(f"the server refused nick '{event.arguments[0] if event.arguments else ''}'"
                   f" ({detail}); check '[irc] nick'")

    def _on_error(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        # The server hangs up next; say why when it does.
        self._drop_reason = self._drop_reason or f"server said ERROR {event.target or ''}".strip()

    # SASL PLAIN (https://ircv3.net/specs/extensions/sasl-3.1)

    def _on_cap(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if not self.settings.sasl_username or len(event.arguments) < 2:
            return
        sub, caps = event.arguments[0], event.arguments[-1].split()
        if sub == "ACK" and "sasl" in caps:
            conn.send_items("AUTHENTICATE", "PLAIN")
        elif sub == "NAK" and "sasl" in caps:
            self._drop("the server refused the sasl capability, so '[irc] sasl_username' "
                       "cannot log in")

    def _on_authenticate(self, conn: irc.client.ServerConnection,
                         event: irc.client.Event) -> None:
        if event.target != "+" or not self.settings.sasl_username:
            return
        user, password = self.settings.sasl_username, self.settings.sasl_password or ""
        payload = base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode()
        chunks = [payload[i:i + _SASL_CHUNK] for i in range(0, len(payload), _SASL_CHUNK)]
        if len(chunks[-1]) == _SASL_CHUNK:
            chunks.append("+")
        for chunk in chunks:
            conn.send_items("AUTHENTICATE", chunk)

    def _on_sasl_success(self, conn: irc.client.ServerConnection,
                         event: irc.client.Event) -> None:
        self._sasl_done = True
        conn.cap("END")

    def _on_sasl_fail(self, conn: irc.client.ServerConnection,
                      event: irc.client.Event) -> None:
        detail = event.arguments[-1] if event.arguments else event.type
        self._drop(f"SASL login as '{self.settings.sasl_username}' failed: {detail}")
