"""The HTTP side of ``notifier serve`` as a supervised part: uvicorn on a socket of ours.

:class:`WebServer` binds ``[http] listen`` when it is made (so a clash is
reported before anything starts), and :meth:`WebServer.run` serves the
application with uvicorn on an event loop of its own, in the calling
thread, until ``stopping`` is set. uvicorn installs no signal handlers off
the main thread: serve's own handlers stay in charge. ``run`` may be
called again after it raised; the socket stays bound in between, so
clients queue in its backlog while the part restarts.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from ..config import Config, parse_duration
from ..errors import HttpError
from ..storage.feeds import FeedStore
from .api import ApiContext
from .app import Application, Parts
from .binding import bind_listener
from .hub import StreamHub
from .protocol import protocol
from .users import FeedUsers, NegativeCache, User

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..storage import Store
    from ..storage.outbox import Outbox
    from ..users.cache import UserCache

log = logging.getLogger(__name__)

#: seconds open connections get to finish when the server stops
GRACE = 5


class WebServer:
    """The supervised HTTP part (``name``, ``run(stopping)``); see the module docstring.

    ``listener``: a socket bound already (by the parent of the process that serves,
    see :mod:`notifier.service.webproc`); else ``[http] listen`` is bound here.
    """

    name = "http"

    def __init__(self, config: Config, *, store: Store, outbox: Outbox, users: UserCache,
                 health: Callable[[str], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes],
                 check_unsubscribe: Callable[[str], tuple[str, str]],
                 unsubscribe: Callable[[str], tuple[str, str]],
                 listener: socket.socket | None = None):
        self.config = config
        self.registry = CollectorRegistry(auto_describe=True)
        self._reads = Counter("notifier_stream_reads", "Database reads for live streams, by "
                              "cause (recorded, poll, replay, opened)", ["cause"],
                              registry=self.registry)
        self.hub = StreamHub(outbox, on_read=lambda cause: self._reads.labels(cause).inc())
        Gauge("notifier_streams_open", "Open live streams",
              registry=self.registry).set_function(self.hub.open_streams)
        self.users = FeedUsers(users.peek, store.get_user, _remember(users), NegativeCache(
            parse_duration(config.fasjson.cache_ttl)))
        feeds = FeedStore(store.engine, config.delivery.feed_items,
                          display_url=store.display_url, on_close=lambda: None,
                          write_lock=store.write_lock)
        self.api = ApiContext.build(config, store, directory=_directory(config, store),
                                    users=users.get, peek_user=users.peek)
        self.app = Application(Parts(
            http=config.http, health=health,
            metrics=lambda: metrics() + generate_latest(self.registry),
            users=self.users, feeds=feeds, feed_items=config.delivery.feed_items, hub=self.hub,
            check_unsubscribe=check_unsubscribe, unsubscribe=unsubscribe, api=self.api))
        self.socket = listener if listener is not None else bind_listener(config)
        _room_for(config.http.max_connections)
        uvicorn_log = logging.getLogger("uvicorn.error")
        if uvicorn_log.level == logging.NOTSET:
            uvicorn_log.setLevel(logging.WARNING)  # not its start and stop chatter

    @property
    def address(self) -> tuple[str, int]:
        """The host and port actually bound (the port chosen, for port 0)."""
        host, port = self.socket.getsockname()[:2]
        return host, port

    def on_recorded(self) -> None:
        """New outbox rows were recorded (called from the ingest's thread)."""
        self.hub.notify()

    def run(self, stopping: threading.Event) -> None:
        """Serve until ``stopping`` is set; raise :class:`HttpError` if serving ends otherwise."""
        asyncio.run(self._serve(stopping))
        if not stopping.is_set():
            raise HttpError("the HTTP server stopped by itself")

    def close(self) -> None:
        """Release the listening socket (after the last :meth:`run`)."""
        self.socket.close()
        close_mail = getattr(self.api.mail, "close", None)
        if close_mail is not None:
            close_mail()

    async def _serve(self, stopping: threading.Event) -> None:
        http = self.config.http
        server = uvicorn.Server(uvicorn.Config(
            self.app, http=protocol(http.request_timeout), loop="asyncio", ws="none",
            lifespan="off", log_config=None, access_log=False, server_header=False,
            proxy_headers=bool(http.trusted_proxies),
            forwarded_allow_ips=list(http.trusted_proxies) or None,
            backlog=http.backlog, limit_concurrency=http.max_connections,
            timeout_keep_alive=http.keep_alive_timeout,  # type: ignore[arg-type]
            timeout_graceful_shutdown=GRACE, h11_max_incomplete_event_size=http.max_header_bytes))
        await self.hub.start()
        watcher = asyncio.create_task(self._watch(stopping, server))
        try:
            # uvicorn closes the sockets it is given: a duplicate keeps ours listening.
            await server.serve(sockets=[self.socket.dup()])
            failure = self.hub.failure()
        finally:
            watcher.cancel()
            await self.hub.stop()
        if failure is not None:
            raise HttpError(f"the live-stream reader failed: {failure!r}") from failure

    async def _watch(self, stopping: threading.Event, server: uvicorn.Server) -> None:
        while not stopping.is_set() and self.hub.failure() is None:
            await asyncio.sleep(0.1)
        self.hub.close_all()  # streams end, so the server need not wait for them
        server.should_exit = True


def _directory(config: Config, store: Store) -> Callable[[str], User | None] | None:
    """FASJSON's profiles, for people signing in for the first time, when configured."""
    if not config.fasjson.url:
        return None
    from ..users.directory import UserDirectory

    return UserDirectory(config, store).get


def _remember(users: UserCache) -> Callable[[User], None]:
    return lambda record: users.preload([record])


def _room_for(connections: int) -> None:
    """Raise this process's open-file limit to fit ``connections`` (as far as allowed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 1024  # the database, the bus, the workers
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < wanted:
        log.warning("open files are limited to %d: fewer than [http] max_connections = %d "
                    "connections fit", new, connections)

