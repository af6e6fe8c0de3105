"""One IRC network: a connection, its channels' queues, and one line rate for them all.

A thread of its own (:meth:`Network.run`) owns the connection (an ``irc``
library :class:`~irc.client.Reactor`): it reads from the server, and writes
the channels' lines round-robin as fast as the token bucket allows
(``line_rate`` lines per second, bursts of ``burst``), so that the server's
flood protection never has a reason to act. Messages reach a channel's queue
from the bus thread (:meth:`Network.offer`), under the network's lock.

Queues belong to the network, not to the connection: while disconnected,
nothing is taken off them, so a reconnect loses no queued line (a storm in
the meantime is folded as usual). Reconnects, and rejoins after a kick or a
refused join, wait with exponential backoff and jitter. A nick in use gets
``_`` appended; the bot asks with ``ISON`` every :data:`REGAIN_EVERY`
seconds, and when its nick quits or changes, and takes it back when free.
What the server tells of the channels is followed in :mod:`.channel_events`;
lines written and not yet confirmed by a PONG are kept in :mod:`.confirm`,
and posted again after a reconnect.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import irc.client
from jaraco.stream import buffer as irc_buffer

from ...backoff import backoff_delay
from ...config import FirehoseNetwork
from .channel_events import ChannelEvents
from .channels import Channel
from .confirm import Unconfirmed
from .lines import Colours, truncate
from .metrics import FirehoseMetrics
from .queue import entry_count
from .sockets import open_socket

log = logging.getLogger(__name__)

RECONNECT_BASE, RECONNECT_MAX = 2.0, 300.0
REGAIN_EVERY = 30.0
#: registration, SASL included, must finish within this many seconds
REGISTER_TIMEOUT = 30.0
#: after this many silent seconds the bot PINGs the server, and drops it after twice as many
KEEPALIVE = 90.0
#: seconds to wait for NickServ to confirm IDENTIFY before joining anyway
IDENTIFY_WAIT = 10.0
#: replies to people (commands) waiting at most: more are dropped
MAX_REPLIES = 60
POLL = 0.05


class Network(ChannelEvents):
    """See the module docstring; ``on_command(network, nick, target, text)`` handles commands."""

    def __init__(self, spec: FirehoseNetwork, colours: Colours, metrics: FirehoseMetrics,
                 on_command: Callable[[Network, str, str | None, str], None]):
        self.spec = spec
        self.name = spec.name or spec.host
        self.colours = colours
        self.metrics = metrics
        self.on_command = on_command
        self.channels = {c.name.lower(): Channel(c) for c in spec.channels}
        # reentrant: a write that fails disconnects, and the disconnect handler takes it too
        self.lock = threading.RLock()
        self.replies: deque[tuple[str, str]] = deque()
        self.nick = spec.nick
        self.connected = False
        self.registered = False
        self.tokens = float(spec.burst)
        self._refilled = time.monotonic()
        self._reconnects = 0
        self._connect_at = 0.0
        self._join_at: float | None = None
        self._register_by = 0.0
        self._regain_at = 0.0
        self._rr = 0
        self._closing = False
        self._heard, self._pinged = 0.0, False
        #: why the connection is to be dropped at the next tick ("" to keep it)
        self._drop = ""
        self.unconfirmed = Unconfirmed()
        self.reactor = irc.client.Reactor()
        self.reactor.add_global_handler("all_raw_messages", self._on_anything)
        self.conn: irc.client.ServerConnection | None = None
        for event, handler in {
                "welcome": self._on_welcome, "nicknameinuse": self._on_nick_taken,
                "unavailresource": self._on_nick_taken, "join": self._on_join,
                "kick": self._on_kick, "part": self._on_part, "namreply": self._on_names,
                "mode": self._on_mode, "channelmodeis": self._on_channel_modes,
                "nick": self._on_nick, "quit": self._on_quit, "ison": self._on_ison,
                "pubmsg": self._on_pubmsg, "privmsg": self._on_privmsg, "pong": self._on_pong,
                "privnotice": self._on_privnotice, "loggedin": self._on_identified,
                "login_failed": self._on_login_failed, "disconnect": self._on_disconnect,
                "cannotsendtochan": self._on_refused_line, "bannedfromchan": self._on_refused,
                "inviteonlychan": self._on_refused, "badchannelkey": self._on_refused,
                "channelisfull": self._on_refused}.items():
            self.reactor.add_global_handler(event, handler)

    # -- from other threads -----------------------------------------------------------

    def offer(self, record: dict[str, Any], at: float) -> None:
        """Queue ``record`` for each channel whose filter passes it."""
        with self.lock:
            waiting = sum(len(c.queue) for c in self.channels.values()) + len(self.replies)
            wait = waiting / self.spec.line_rate
            if not self.connected:
                wait += max(0.0, self._connect_at - time.monotonic())
            for channel in self.channels.values():
                if not channel.filter.passes(record):
                    continue
                if channel.paused:
                    self.metrics.count(self.name, channel.name, "dropped")
                    continue
                channel.queue.push(record, at, wait)
                if channel.queue.overflow:
                    self.metrics.count(self.name, channel.name, "dropped",
                                       channel.queue.overflow)
                    channel.queue.overflow = 0

    def reply(self, nick: str, text: str, private: bool = True) -> None:
        """Send ``text`` to ``nick`` by private message (always, on IRC), within the line
        rate."""
        with self.lock:
            if len(self.replies) < MAX_REPLIES:
                self.replies.append((nick, text))

    def pause(self, channel: Channel, paused: bool) -> int:
        """Pause or resume ``channel``; pausing drops (and counts) what waits."""
        with self.lock:
            channel.paused = paused
            dropped = channel.queue.clear() if paused else 0
        if dropped:
            self.metrics.count(self.name, channel.name, "dropped", dropped)
        return dropped

    # -- the connection thread --------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        """Keep connected and posting until ``stopping`` is set."""
        try:
            while not stopping.is_set():
                now = time.monotonic()
                if self.conn is None or not self.conn.is_connected():
                    if now >= self._connect_at:
                        self._connect()
                    else:
                        stopping.wait(min(POLL * 4, self._connect_at - now))
                    continue
                self.reactor.process_once(POLL)
                self._tick(time.monotonic())
        finally:
            self._closing = True
            if self.conn is not None and self.conn.is_connected():
                try:
                    self.conn.quit("stopping")
                except irc.client.ServerNotConnectedError:
                    pass
                self.conn.disconnect()

    def _connect(self) -> None:
        spec = self.spec
        self.conn = self.conn or self.reactor.server()
        self.conn.buffer_class = irc_buffer.LenientDecodingLineBuffer
        sasl = bool(spec.sasl_username and spec.sasl_password)
        self.nick = spec.nick
        self._drop = ""
        # A connection lost in the middle of SASL leaves the library's handlers registered;
        # connect() registers them again, and twice they would answer every step twice.
        for event in ("cap", "authenticate", "saslsuccess", "saslfail"):
            self.reactor.remove_global_handler(event, self.conn._sasl_state_machine)
        try:
            self.conn.connect(spec.host, spec.port, self.nick,
                              password=spec.sasl_password if sasl else None,
                              username=spec.nick, ircname="notifier firehose",
                              connect_factory=functools.partial(open_socket, spec),
                              sasl_login=spec.sasl_username if sasl else None)
        except (irc.client.ServerConnectionError, OSError) as exc:
            self._schedule_reconnect(f"cannot connect: {exc}")
            return
        log.info("%s: connected to %s:%d as %s", self.name, spec.host, spec.port, self.nick)
        now = time.monotonic()
        self._register_by = now + REGISTER_TIMEOUT
        self._heard, self._pinged = now, False

    def _schedule_reconnect(self, why: str) -> None:
        delay = backoff_delay(self._reconnects, RECONNECT_BASE, RECONNECT_MAX)
        self._reconnects += 1
        with self.lock:
            self.connected = False
            self._connect_at = time.monotonic() + delay
        log.warning("%s: %s; reconnecting in %.1f s", self.name, why, delay)

    def _tick(self, now: float) -> None:
        assert self.conn is not None
        if self._drop:
            why, self._drop = self._drop, ""
            self.conn.disconnect(why)
            return
        if now - self._heard > 2 * KEEPALIVE:
            self.conn.disconnect("the server stopped answering")
            return
        if now - self._heard > KEEPALIVE and not self._pinged:
            self._pinged = True
            self.conn.ping("keepalive")
        if not self.registered:
            if now > self._register_by:
                self.conn.disconnect("registration timed out")
            return
        if self._join_at is not None and now >= self._join_at:
            self._join_at = None
            for channel in self.channels.values():
                channel.rejoin_at = now
        for channel in self.channels.values():
            if not channel.joined and channel.rejoin_at and now >= channel.rejoin_at:
                channel.rejoin_at = 0.0
                self.conn.join(channel.name, channel.spec.key)
        if self.nick != self.spec.nick and now >= self._regain_at:
            self._regain_at = now + REGAIN_EVERY
            self.conn.ison([self.spec.nick])
        self._send_due(now)

    def _send_due(self, now: float) -> None:
        rate, burst = self.spec.line_rate, self.spec.burst
        self.tokens = min(float(burst), self.tokens + (now - self._refilled) * rate)
        self._refilled = now
        with self.lock:
            for channel in self.channels.values():
                oldest = channel.queue.oldest()
                if oldest is not None and now - oldest > channel.queue.max_delay:
                    channel.queue.fold()
        while self.tokens >= 1.0 and self._send_one(now):
            self.tokens -= 1.0
        token = self.unconfirmed.ping_due(now)
        if token is not None and self.conn is not None and self.conn.is_connected():
            self.conn.ping(token)

    def _send_one(self, now: float) -> bool:
        """Write one line, a reply first, else the next channel's in turn; False if none."""
        assert self.conn is not None
        with self.lock:
            if self.replies:
                nick, text = self.replies.popleft()
                self._write("privmsg", nick, text)
                return True
            ready = [c for c in self.channels.values() if c.joined and len(c.queue)]
            if not ready:
                return False
            self._rr = (self._rr + 1) % len(ready)
            channel = ready[self._rr]
            taken = channel.queue.pop(now, self.colours, not channel.no_colours)
            assert taken is not None
            entry, text, alone, folded = taken
            try:
                self._write(channel.spec.method, channel.name, text)
            except irc.client.ServerNotConnectedError:
                channel.queue.requeue(entry)
                return False
            if not self.conn.is_connected():  # the write failed and dropped the connection
                channel.queue.requeue(entry)
                return False
            self.unconfirmed.written(channel, entry)
        self.metrics.posted(self.name, channel.name, alone, folded)
        return True

    def _write(self, method: str, target: str, text: str) -> None:
        assert self.conn is not None
        send = self.conn.notice if method == "notice" else self.conn.privmsg
        send(target, truncate(text))

    # -- events -------------------------------------------------------------------------

    def _on_anything(self, conn: Any, event: Any) -> None:
        self._heard, self._pinged = time.monotonic(), False

    def _on_welcome(self, conn: Any, event: Any) -> None:
        self.nick = event.target
        self.registered = True
        self._reconnects = 0
        with self.lock:
            self.connected = True
        if self.spec.nickserv_password and not self.spec.sasl_username:
            conn.privmsg("NickServ", f"IDENTIFY {self.spec.nick} {self.spec.nickserv_password}")
            self._join_at = time.monotonic() + IDENTIFY_WAIT
        else:
            self._join_at = time.monotonic()
        log.info("%s: registered as %s", self.name, self.nick)

    def _on_identified(self, conn: Any, event: Any) -> None:
        if self._join_at is not None:
            self._join_at = time.monotonic()

    def _on_privnotice(self, conn: Any, event: Any) -> None:
        source = event.source.nick if event.source else ""
        if source.lower() == "nickserv" and "identified" in event.arguments[0].lower():
            self._on_identified(conn, event)

    def _on_login_failed(self, conn: Any, event: Any) -> None:
        # The library still writes CAP END after this event: the connection is dropped by
        # the next tick, not here, so that write finds it open.
        # the irc library puts its reason where the event's target goes, not its arguments
        reason = event.arguments or (event.target if isinstance(event.target, list) else [])
        log.error("%s: SASL login failed as %s: %s (check sasl_username and sasl_password)",
                  self.name, self.spec.sasl_username, " ".join(map(str, reason)) or "no reason")
        self._drop = "SASL login failed"

    def _on_nick_taken(self, conn: Any, event: Any) -> None:
        if self.registered:
            return  # a regain attempt that lost the race: keep the current nick
        self.nick = (self.nick + "_")[:30]
        conn.nick(self.nick)

    def _on_ison(self, conn: Any, event: Any) -> None:
        online = {n.lower() for n in " ".join(event.arguments).split()}
        if self.spec.nick.lower() not in online:
            conn.nick(self.spec.nick)

    def _on_nick(self, conn: Any, event: Any) -> None:
        old, new = event.source.nick, event.target
        if old == self.nick:
            self.nick = new
            log.info("%s: now known as %s", self.name, new)
        elif old.lower() == self.spec.nick.lower() and self.nick != self.spec.nick:
            conn.nick(self.spec.nick)
        for channel in self.channels.values():
            if old.lower() in channel.ops:
                channel.ops.discard(old.lower())
                channel.ops.add(new.lower())

    def _on_quit(self, conn: Any, event: Any) -> None:
        nick = event.source.nick
        if nick.lower() == self.spec.nick.lower() and self.nick != self.spec.nick:
            conn.nick(self.spec.nick)
        for channel in self.channels.values():
            channel.ops.discard(nick.lower())

    def _on_pubmsg(self, conn: Any, event: Any) -> None:
        text = event.arguments[0].strip()
        for sep in (":", ","):
            prefix = f"{self.nick}{sep}".lower()
            if text.lower().startswith(prefix):
                self.on_command(self, event.source.nick, event.target, text[len(prefix):])
                return

    def _on_privmsg(self, conn: Any, event: Any) -> None:
        self.on_command(self, event.source.nick, None, event.arguments[0])

    def _on_pong(self, conn: Any, event: Any) -> None:
        if event.arguments:
            self.unconfirmed.confirmed(event.arguments[-1])

    def _on_disconnect(self, conn: Any, event: Any) -> None:
        self.registered = False
        if self._closing:
            with self.lock:
                self.connected = False
            return
        self._requeue_unconfirmed()
        self._join_at = None
        for channel in self.channels.values():
            channel.joined, channel.rejoin_at, channel.rejoins = False, 0.0, 0
            channel.ops.clear()
        why = " ".join(event.arguments) or "disconnected"
        self.metrics.count(self.name, "", "disconnects")
        self._schedule_reconnect(f"connection lost ({why})")

    def _requeue_unconfirmed(self) -> None:
        """Put the lines the server never confirmed back at the front of their queues."""
        taken = self.unconfirmed.take()
        with self.lock:
            for channel, entry in reversed(taken):
                if channel.paused:
                    self.metrics.count(self.name, channel.name, "dropped", entry_count(entry))
                    continue
                channel.queue.requeue(entry)
                self.metrics.count(self.name, channel.name, "resent")
        if taken:
            log.warning("%s: %d line(s) written but not confirmed before the connection was "
                        "lost; they will be posted again", self.name, len(taken))

    def is_op(self, channel: Channel, nick: str) -> bool:
        """Whether ``nick`` is an operator of ``channel`` as far as the bot has seen."""
        return nick.lower() in channel.ops
