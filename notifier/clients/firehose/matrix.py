"""One Matrix homeserver: an account, its rooms' queues, and one line rate for them all.

The Matrix side of the firehose, a peer of :class:`~.network.Network`: a
thread of its own (:meth:`MatrixServer.run`) runs a matrix-nio client in its
own event loop. It joins each room (by id or alias), syncs to hear commands,
and posts the rooms' lines round-robin as ``m.notice`` (or ``m.text``) with a
plain body and an HTML body, as fast as the token bucket allows. The rooms'
queues are the IRC channels' (:mod:`.queue`): a storm is folded the same way.
``M_LIMIT_EXCEEDED`` holds every line for ``retry_after_ms``; a failed line
goes back to the front of its queue, and a lost connection is retried with
backoff, so nothing queued is lost. Commands are the IRC ones
(:mod:`.commands`), addressed as ``firehose: help`` in a room and answered
there, but for ``last``, whose lines go to the asker's direct room
(:mod:`.matrix_rooms`); ``pause`` and ``resume`` need a power level of at
least :data:`MODERATOR`. Invitations are accepted to the configured rooms
only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RoomCreateEvent,
    RoomMessageText,
    RoomSendError,
    SyncResponse,
)

from ...backoff import backoff_delay
from ...config import FirehoseMatrix, FirehoseRoom
from .filters import ChannelFilter
from .lines import Colours
from .matrix_lines import content
from .matrix_rooms import DirectRooms, invitation
from .metrics import FirehoseMetrics
from .queue import ChannelQueue

log = logging.getLogger(__name__)

#: the power level of a room's moderators: pause and resume need it
MODERATOR = 50
RECONNECT_BASE, RECONNECT_MAX = 2.0, 300.0
REJOIN_BASE, REJOIN_MAX = 5.0, 300.0
#: how long each sync waits for news (milliseconds)
SYNC_WAIT_MS = 1000
MAX_REPLIES = 60
#: room versions whose creators have no power level but outrank everyone (before 12)
_LEVELLED_CREATORS = frozenset(str(v) for v in range(1, 12))
POLL = 0.05
_SYNC_FILTER = {"room": {"timeline": {"limit": 50}}, "presence": {"types": []},
                "account_data": {"types": []}}


class Room:
    """A room's settings, filter and queue, and what the homeserver told about it."""

    def __init__(self, spec: FirehoseRoom):
        self.spec = spec
        self.name = spec.room
        self.filter = ChannelFilter(spec.include, spec.exclude)
        self.queue = ChannelQueue(spec.room, spec.max_delay)
        self.room_id = spec.room if spec.room.startswith("!") else ""
        self.joined = False
        self.paused = False
        self.join_at = 0.0
        self.joins = 0


class MatrixServer:
    """See the module docstring; ``on_command(server, sender, room key, text)`` handles commands."""

    def __init__(self, spec: FirehoseMatrix, colours: Colours, metrics: FirehoseMetrics,
                 on_command: Callable[[Any, str, str | None, str], None]):
        self.spec = spec
        self.name = spec.name or spec.homeserver
        self.colours = colours
        self.metrics = metrics
        self.on_command = on_command
        #: rooms by their configured id or alias, lowercased (what ``pause`` names)
        self.channels = {r.room.lower(): Room(r) for r in spec.rooms}
        self.lock = threading.RLock()
        self.replies: deque[tuple[str, str]] = deque()
        self.connected = False
        self.tokens = float(spec.burst)
        self._refilled = time.monotonic()
        #: nothing is sent before this (M_LIMIT_EXCEEDED, time.monotonic)
        self.hold_until = 0.0
        self._rr = 0
        self._reply_room: str | None = None
        #: each room's creators, from its m.room.create event
        self._creators: dict[str, set[str]] = {}
        self.client: AsyncClient | None = None
        self.direct = DirectRooms(self.name, spec.user_id)

    # -- from other threads -----------------------------------------------------------

    def offer(self, record: dict[str, Any], at: float) -> None:
        """Queue ``record`` for each room whose filter passes it."""
        with self.lock:
            waiting = sum(len(r.queue) for r in self.channels.values()) + len(self.replies)
            wait = waiting / self.spec.line_rate + max(0.0, self.hold_until - time.monotonic())
            for room in self.channels.values():
                if not room.filter.passes(record):
                    continue
                if room.paused:
                    self.metrics.count(self.name, room.name, "dropped")
                    continue
                room.queue.push(record, at, wait)
                if room.queue.overflow:
                    self.metrics.count(self.name, room.name, "dropped", room.queue.overflow)
                    room.queue.overflow = 0

    def reply(self, nick: str, text: str, private: bool = False) -> None:
        """Answer a command in the room it was said in (``private``: in the direct room
        with ``nick``, the asker's user id), within the line rate."""
        with self.lock:
            target = nick if private else self._reply_room
            if target and len(self.replies) < MAX_REPLIES:
                self.replies.append((target, text))

    def is_op(self, room: Room, user_id: str) -> bool:
        """Whether ``user_id`` is a moderator of ``room`` (power level >= 50)."""
        known = self.client.rooms.get(room.room_id) if self.client else None
        if known is None:
            return False
        if known.room_version not in _LEVELLED_CREATORS and \
                user_id in self._creators.get(room.room_id, ()):
            return True
        return known.power_levels.get_user_level(user_id) >= MODERATOR

    def pause(self, room: Room, paused: bool) -> int:
        """Pause or resume ``room``; pausing drops (and counts) what waits."""
        with self.lock:
            room.paused = paused
            dropped = room.queue.clear() if paused else 0
        if dropped:
            self.metrics.count(self.name, room.name, "dropped", dropped)
        return dropped

    # -- the client thread ------------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        """Keep joined and posting until ``stopping`` is set."""
        asyncio.run(self._main(stopping))

    async def _main(self, stopping: threading.Event) -> None:
        # nio's own retries would hide a 429 from the queue (and a lost connection from
        # the backoff here): the client gives up at once and this class waits
        client = self.client = AsyncClient(
            self.spec.homeserver, self.spec.user_id,
            config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0))
        client.access_token = self.spec.access_token
        client.user_id = self.spec.user_id
        failures = 0
        try:
            while not stopping.is_set():
                try:
                    await self._session(client, stopping)
                except (TimeoutError, aiohttp.ClientError, OSError, ConnectionError) as exc:
                    why = str(exc) or type(exc).__name__
                else:
                    return
                self.connected = False
                delay = backoff_delay(failures, RECONNECT_BASE, RECONNECT_MAX)
                failures += 1
                log.warning("%s: %s; retrying in %.1f s", self.name, why, delay)
                until = time.monotonic() + delay
                while time.monotonic() < until and not stopping.is_set():
                    await asyncio.sleep(POLL * 4)
        finally:
            self.connected = False
            await client.close()

    async def _session(self, client: AsyncClient, stopping: threading.Event) -> None:
        first = await client.sync(timeout=0, sync_filter=_SYNC_FILTER, full_state=True)
        if not isinstance(first, SyncResponse):
            raise ConnectionError(f"sync failed: {getattr(first, 'message', first)}")
        self._learn(first)
        await self._invited(client, first)
        self.connected = True
        log.info("%s: synced as %s", self.name, self.spec.user_id)
        sync: asyncio.Task[Any] | None = None
        try:
            while not stopping.is_set():
                now = time.monotonic()
                await self._join_due(client, now)
                if sync is None:
                    sync = asyncio.create_task(client.sync(timeout=SYNC_WAIT_MS,
                                                           sync_filter=_SYNC_FILTER))
                elif sync.done():
                    response, sync = sync.result(), None
                    if not isinstance(response, SyncResponse):
                        raise ConnectionError(
                            f"sync failed: {getattr(response, 'message', response)}")
                    self._learn(response)
                    await self._invited(client, response)
                    self._commands(response)
                await self._send_due(client, now)
                await asyncio.sleep(POLL)
        finally:
            if sync is not None:
                sync.cancel()

    async def _join_due(self, client: AsyncClient, now: float) -> None:
        for room in self.channels.values():
            if room.joined and room.room_id in client.rooms:
                continue
            if now < room.join_at:
                continue
            answer = await client.join(room.room_id or room.spec.room)
            if isinstance(answer, JoinResponse):
                room.room_id, room.joined, room.joins = answer.room_id, True, 0
                log.info("%s: joined %s (%s)", self.name, room.name, room.room_id)
                continue
            room.joined = False
            delay = backoff_delay(room.joins, REJOIN_BASE, REJOIN_MAX)
            room.joins += 1
            room.join_at = now + delay
            log.warning("%s: cannot join %s: %s; again in %.1f s", self.name, room.name,
                        getattr(answer, "message", answer), delay)

    async def _invited(self, client: AsyncClient, response: SyncResponse) -> None:
        """Join the configured rooms the bot is invited to; decline other invitations."""
        for room_id, info in response.rooms.invite.items():
            aliases, sender = invitation(info)
            room = next((r for key, r in self.channels.items()
                         if r.room_id == room_id or key in aliases), None)
            if room is not None:
                log.info("%s: invited to %s by %s", self.name, room.name, sender)
                room.room_id, room.join_at = room_id, 0.0  # joined on the next turn
                continue
            log.info("%s: declining the invitation of %s to %s: not a configured room",
                     self.name, sender, room_id)
            await client.room_leave(room_id)

    def _learn(self, response: SyncResponse) -> None:
        """Note the creators of rooms whose create event came in ``response``."""
        for room_id, info in response.rooms.join.items():
            for event in [*info.state, *info.timeline.events]:
                if isinstance(event, RoomCreateEvent):
                    extra = event.source.get("content", {}).get("additional_creators", [])
                    self._creators[room_id] = {event.sender, *(
                        c for c in extra if isinstance(c, str))}

    def _commands(self, response: SyncResponse) -> None:
        by_id = {r.room_id: key for key, r in self.channels.items() if r.room_id}
        for room_id, info in response.rooms.join.items():
            key = by_id.get(room_id)
            if key is None:
                continue
            for event in info.timeline.events:
                if not isinstance(event, RoomMessageText) or event.sender == self.spec.user_id:
                    continue
                text = self._addressed(room_id, event.body)
                if text is None:
                    continue
                self._reply_room = room_id
                try:
                    self.on_command(self, event.sender, key, text)
                finally:
                    self._reply_room = None

    def _addressed(self, room_id: str, body: str) -> str | None:
        """The command in ``body`` if it starts with the bot's name and a colon or comma."""
        me = self.spec.user_id
        names = {me, me[1:].split(":", 1)[0]}
        known = self.client.rooms.get(room_id) if self.client else None
        if known is not None:
            names.add(known.user_name(me) or "")
        lowered = body.strip().lower()
        for name in sorted((n for n in names if n), key=len, reverse=True):
            head = name.lower()
            if lowered.startswith(head) and lowered[len(head):len(head) + 1] in (":", ","):
                return body.strip()[len(head) + 1:].strip()
        return None

    async def _send_due(self, client: AsyncClient, now: float) -> None:
        rate, burst = self.spec.line_rate, self.spec.burst
        self.tokens = min(float(burst), self.tokens + (now - self._refilled) * rate)
        self._refilled = now
        with self.lock:
            for room in self.channels.values():
                oldest = room.queue.oldest()
                if oldest is not None and now - oldest > room.queue.max_delay:
                    room.queue.fold()
        while self.tokens >= 1.0 and now >= self.hold_until and \
                await self._send_one(client, now):
            self.tokens -= 1.0

    async def _send_one(self, client: AsyncClient, now: float) -> bool:
        """Post one line, a reply first, else the next room's in turn; False if none."""
        with self.lock:
            reply = self.replies.popleft() if self.replies else None
        if reply is not None:
            return await self._send_reply(client, reply)
        with self.lock:
            ready = [r for r in self.channels.values() if r.joined and len(r.queue)]
            if not ready:
                return False
            self._rr = (self._rr + 1) % len(ready)
            room = ready[self._rr]
            taken = room.queue.pop(now, self.colours, True)
            assert taken is not None
            entry, text, alone, folded = taken
        try:
            posted = await self._post(client, room.room_id, content(text, room.spec.method))
        except BaseException:
            with self.lock:
                room.queue.requeue(entry)
            raise
        if not posted:
            with self.lock:
                room.queue.requeue(entry)
            return False
        self.metrics.posted(self.name, room.name, alone, folded)
        return True

    async def _send_reply(self, client: AsyncClient, reply: tuple[str, str]) -> bool:
        target, text = reply
        try:
            room_id = await self.direct.room_for(client, target) \
                if target.startswith("@") else target
            if room_id is None:
                return True  # no direct room to be had: the answer is dropped (logged)
            if await self._post(client, room_id, content(text)):
                return True
        except BaseException:
            with self.lock:
                self.replies.appendleft(reply)
            raise
        if time.monotonic() < self.hold_until:  # rate limited: the answer waits its turn
            with self.lock:
                self.replies.appendleft(reply)
        elif target.startswith("@"):
            # refused (logged): the answer is dropped, not tried again and again, and the
            # next one looks for the direct room anew
            self.direct.forget(target)
        return False

    async def _post(self, client: AsyncClient, room_id: str, body: dict[str, Any]) -> bool:
        answer = await client.room_send(room_id, "m.room.message", body,
                                        ignore_unverified_devices=True)
        if not isinstance(answer, RoomSendError):
            return True
        if answer.status_code == "M_LIMIT_EXCEEDED":
            wait = (answer.retry_after_ms or 1000) / 1000
            self.hold_until = time.monotonic() + wait
            self.metrics.count(self.name, "", "limited")
            log.info("%s: rate limited; holding lines for %.1f s", self.name, wait)
            return False
        for room in self.channels.values():
            if room.room_id == room_id:
                room.joined = False  # joined again (or retried with backoff) on the next turn
        log.warning("%s: cannot post to %s: %s", self.name, room_id, answer.message)
        return False
