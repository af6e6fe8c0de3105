"""The live-stream hub: one database read per batch of new rows, fanned out in memory.

A :class:`Channel` feeds the open streams of one kind of row (a
:class:`~notifier.web.sources.Source`); :class:`StreamHub` is the channel of
desktop outbox rows (``/users/<user>/stream``) and holds the channel of inbox
rows (:attr:`StreamHub.inbox`, ``/api/v1/notifications/stream``), and starts,
stops and wakes both. The ingest writes a batch's outbox and inbox rows in one
transaction, then calls :meth:`StreamHub.notify` (from its own thread).

A channel, on the event loop, then reads its rows after the last id it saw,
once, off the loop, and hands each open stream the rows of its user, already
encoded as Server-Sent Events. With no stream open it does nothing at all,
not even wake up: it only notes that its mark is behind, and the next stream
that opens "from now" has the mark read again first (one read, shared by the
streams opening together). While streams are open it also looks every
``poll_interval`` seconds, for rows recorded by anyone else (another serve on
the same PostgreSQL database).

Each stream has a bounded queue; a stream that falls ``queue_limit`` events
behind is dropped (its client reconnects with ``Last-Event-ID`` and catches
up from the database), so one slow reader never holds the others up, and no
stream holds more than ``queue_limit`` events in memory.

Rows are read in id order after a mark, which assumes ids become visible in
the order they were given: true on SQLite (one writer at a time) and for a
single serve on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable

from ..errors import StorageError
from ..storage.inbox import Inbox
from ..storage.outbox import Outbox
from .sources import DesktopRows, Frame, InboxRows, Source

log = logging.getLogger(__name__)

#: rows per database read
PAGE = 1000
#: streams resuming at once whose rows are read together, at most
REPLAY_BATCH = 500
#: how far apart (in row ids) the streams read together may resume
REPLAY_SPREAD = 100_000


class Subscriber:
    """One open stream: its user, the last id it has, and what waits to be sent."""

    def __init__(self, user: str, last: int, limit: int):
        self.user = user
        self.last = last
        self.limit = limit
        self.closed: str | None = None
        self._queue: deque[list[Frame]] = deque()
        self._queued = 0
        self._ready = asyncio.Event()
        #: called when the hub drops this subscriber (the stream aborts its connection)
        self.on_drop: Callable[[], None] = lambda: None

    def offer(self, batch: list[Frame]) -> None:
        if self.closed:
            return
        if self._queued + len(batch) > self.limit:
            self.close("slow")
            self.on_drop()
            return
        self._queue.append(batch)
        self._queued += len(batch)
        self._ready.set()

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = reason
        self._ready.set()

    def take(self) -> bytes:
        """What is queued with an id after :attr:`last`, as one chunk (empty if nothing)."""
        out = []
        while self._queue:
            for row_id, data in self._queue.popleft():
                if row_id > self.last:
                    out.append(data)
                    self.last = row_id
        self._queued = 0
        self._ready.clear()
        return b"".join(out)

    async def wait(self, timeout: float) -> bool:
        """Wait until something is queued or the stream closed; False on timeout."""
        if self._ready.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True


class Channel:
    """Open streams of one source by user, and the one reader that feeds them; see the
    module docstring."""

    def __init__(self, source: Source, *, queue_limit: int = 1000, poll_interval: float = 5.0,
                 heartbeat: float = 15.0, on_read: Callable[[str], None] = lambda cause: None,
                 replay_limit: int | None = None):
        self.source = source
        #: a stream resuming gets at most this many rows, its user's newest (None: all)
        self.replay_limit = replay_limit
        #: seconds between keep-alive comments on an idle stream
        self.heartbeat = heartbeat
        self.queue_limit = queue_limit
        self.poll_interval = poll_interval
        self.on_read = on_read
        #: the newest row id every open stream has been given (or that existed when none was)
        self.cursor = 0
        #: rows were recorded while no stream was open: :attr:`cursor` is to be read again
        self._behind = False
        self._refresh: asyncio.Future[None] | None = None
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._replay_wake: asyncio.Event | None = None
        self._replays: list[tuple[Subscriber, asyncio.Future[bytes]]] = []
        self._replay_task: asyncio.Task[None] | None = None

    # -- lifecycle (on the event loop) ----------------------------------------

    async def start(self) -> None:
        """Start on the running loop, from the newest row."""
        loop = asyncio.get_running_loop()
        self.cursor = await loop.run_in_executor(None, self.source.last_id)
        self._behind = False
        self._refresh = None
        self._subscribers.clear()
        self._wake = asyncio.Event()
        self._replay_wake = asyncio.Event()
        self._replays = []
        self._task = loop.create_task(self._pump(), name=f"stream-hub-{self.source.name}")
        self._replay_task = loop.create_task(self._replayer(),
                                              name=f"stream-replays-{self.source.name}")
        self._loop = loop

    def close_all(self, reason: str = "stopping") -> None:
        """End every open stream."""
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.close(reason)

    async def stop(self) -> None:
        self._loop = None
        self.close_all()
        for task in (self._task, self._replay_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._replay_task = None

    def failure(self) -> BaseException | None:
        """Why a reader stopped, if one stopped by itself (a bug: they survive database errors)."""
        for task in (self._task, self._replay_task):
            if task is not None and task.done() and not task.cancelled():
                return task.exception()
        return None

    def notify(self) -> None:
        """New rows were recorded. Safe from any thread; does nothing while stopped.

        With no stream open it only notes that the mark is behind: the ingest
        calls this after every batch, and waking the event loop (and reading
        the database) for nobody costs the ingest its time.
        """
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if not self._subscribers:
            self._behind = True
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:
            pass  # the loop closed meanwhile: the next start reads from the newest row

    # -- streams ----------------------------------------------------------------

    async def subscribe(self, user: str, after: int | None) -> Subscriber:
        """A new stream of ``user``'s rows: those after ``after``, else from now on.

        Raises :class:`~notifier.errors.StorageError` when "now" must be read
        from the database and cannot be.
        """
        if after is None:
            await self._catch_up()
        subscriber = Subscriber(user, self.cursor if after is None else after, self.queue_limit)
        self._subscribers[user].add(subscriber)
        return subscriber

    async def _catch_up(self) -> None:
        """Read the mark again if rows were recorded while no stream was open; the streams
        opening meanwhile share the read."""
        if self._refresh is None:
            if not self._behind:
                return
            self._behind = False
            self._refresh = asyncio.ensure_future(self._read_cursor())
        refresh = self._refresh
        try:
            await asyncio.shield(refresh)
        except StorageError:
            self._behind = True
            raise
        finally:
            if self._refresh is refresh:
                self._refresh = None

    async def _read_cursor(self) -> None:
        loop = asyncio.get_running_loop()
        newest = await loop.run_in_executor(None, self.source.last_id)
        self.on_read("opened")
        self.cursor = max(self.cursor, newest)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.user)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.user]

    def open_streams(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def replay(self, subscriber: Subscriber) -> bytes:
        """``subscriber``'s rows after its last id, from the database, as one chunk.

        Streams that resume together (a reconnect storm) share their reads:
        up to :data:`REPLAY_BATCH` of them, whose ids lie within
        :data:`REPLAY_SPREAD` of each other, are read in one query.
        """
        assert self._replay_wake is not None
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replays.append((subscriber, done))
        self._replay_wake.set()
        return await done

    # -- reading ------------------------------------------------------------------

    async def _replayer(self) -> None:
        assert self._replay_wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._replay_wake.wait()
            self._replay_wake.clear()
            while self._replays:
                waiting = sorted(self._replays, key=lambda pair: pair[0].last)
                batch = [pair for pair in waiting[:REPLAY_BATCH]
                         if pair[0].last - waiting[0][0].last <= REPLAY_SPREAD]
                taken = {id(pair[1]) for pair in batch}
                self._replays = [pair for pair in self._replays if id(pair[1]) not in taken]
                users = sorted({subscriber.user for subscriber, _ in batch})
                try:
                    found = await loop.run_in_executor(None, self._read_users, users,
                                                       batch[0][0].last)
                except StorageError as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for subscriber, done in batch:
                    out = []
                    for row_id, data in found.get(subscriber.user, ()):
                        if row_id > subscriber.last:
                            out.append(data)
                            subscriber.last = row_id
                    if not done.done():
                        done.set_result(b"".join(out))

    def _read_users(self, users: list[str], after: int) -> dict[str, deque[Frame]]:
        found: dict[str, deque[Frame]] = defaultdict(lambda: deque(maxlen=self.replay_limit))
        while True:
            after, count, new = self.source.read(after, users, PAGE)
            self.on_read("replay")
            for user, item in new:
                found[user].append(item)
            if count < PAGE:
                return found

    def _read_new(self, after: int) -> tuple[int, int, list[tuple[str, Frame]]]:
        return self.source.read(after, None, PAGE)

    async def _pump(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            cause = "recorded"
            try:
                async with asyncio.timeout(self.poll_interval if self._subscribers else None):
                    await self._wake.wait()
            except TimeoutError:
                cause = "poll"
            self._wake.clear()
            try:
                if not self._subscribers:
                    self._behind = True  # the next stream opening "from now" reads the mark
                    continue
                await self._fan_out(loop, cause)
            except StorageError as exc:
                # The streams wait; the next wake or poll tries again.
                log.error("live streams (%s): %s", self.source.name, exc)
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _fan_out(self, loop: asyncio.AbstractEventLoop, cause: str) -> None:
        while True:
            newest, count, new = await loop.run_in_executor(None, self._read_new, self.cursor)
            self.on_read(cause)
            by_user: dict[str, list[Frame]] = defaultdict(list)
            for user, item in new:
                by_user[user].append(item)
            self.cursor = newest
            for user, batch in by_user.items():
                for subscriber in list(self._subscribers.get(user, ())):
                    subscriber.offer(batch)
            if count < PAGE:
                return


class StreamHub(Channel):
    """The channel of desktop outbox rows, holding the channel of inbox rows
    (:attr:`inbox`): one start, stop and wake-up for both."""

    def __init__(self, outbox: Outbox, *, queue_limit: int = 1000, poll_interval: float = 5.0,
                 heartbeat: float = 15.0, on_read: Callable[[str], None] = lambda cause: None):
        super().__init__(DesktopRows(outbox), queue_limit=queue_limit,
                         poll_interval=poll_interval, heartbeat=heartbeat, on_read=on_read)
        self.outbox = outbox
        #: the streams of inbox rows; its reads count as ``inbox-<cause>``
        self.inbox = Channel(InboxRows(Inbox(outbox.store)), queue_limit=queue_limit,
                             poll_interval=poll_interval, heartbeat=heartbeat,
                             on_read=lambda cause: on_read(f"inbox-{cause}"),
                             replay_limit=queue_limit)

    async def start(self) -> None:
        await super().start()
        try:
            await self.inbox.start()
        except BaseException:
            await super().stop()
            raise

    def close_all(self, reason: str = "stopping") -> None:
        super().close_all(reason)
        self.inbox.close_all(reason)

    async def stop(self) -> None:
        await super().stop()
        await self.inbox.stop()

    def failure(self) -> BaseException | None:
        return super().failure() or self.inbox.failure()

    def notify(self) -> None:
        super().notify()
        self.inbox.notify()

    def open_streams(self) -> int:
        return super().open_streams() + self.inbox.open_streams()
