"""A real uvicorn server (notifier.web.WebServer) in this process, on a free port, over SQLite.

The tests talk to it with httpx and with raw sockets; rows are written to the
outbox as the ingest would, then announced with ``on_recorded``.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from notifier.config import config_from_dict
from notifier.errors import InputError
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from notifier.users.cache import UserCache
from notifier.web import WebServer
from tests.conftest import wait_for
from tests.integration.outbox_rows import envelope, note
from tests.integration.web.oidcpeer import OidcPeer, start_oidc_site

_ids = itertools.count(1)
#: [http] base_url of the test sites
PUBLIC = "https://notify.example.org"


@dataclass
class Statements:
    """The SQL statements the server ran on an engine (not those of the test's own thread)."""

    seen: list[str] = field(default_factory=list)

    def add(self, statement: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.seen.append(statement)

    def writes(self) -> list[str]:
        return [s for s in self.seen
                if s.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]

    def reading(self, table: str) -> list[str]:
        return [s for s in self.seen if s.lstrip().upper().startswith("SELECT")
                and f"FROM {table}" in s]


@dataclass
class Site:
    web: WebServer
    store: Store
    outbox: Outbox
    users: UserCache
    base: str
    statements: Statements
    healthy: dict[str, bool]

    @property
    def host_port(self) -> tuple[str, int]:
        return self.web.address

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=10, **kw)

    def token(self, user: str) -> str:
        record = self.store.get_user(user)
        assert record is not None
        return str(record["feed_token"])

    def record(self, *users: str, state: str = "sent", notify: bool = True) -> list[int]:
        """One batch: a desktop row for each of ``users``; their ids, in order."""
        before = self.outbox.last_id()
        msg_id = f"2025-{next(_ids)}"
        self.outbox.record([envelope(msg_id)], [
            (note(user, msg_id, destination="desktop"), state) for user in users])
        if notify:
            self.web.on_recorded()
        return [row.id for row in self.outbox.rows(after_id=before)]

    def run(self) -> None:
        """Start ``web.run()`` in a thread, and wait until it answers."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self.web.run, args=(self._stopping,),
                                        name="http", daemon=True)
        self._thread.start()
        wait_for(lambda: _answers(self), what="the server to answer")

    def halt(self) -> None:
        """Set ``stopping``; ``run()`` must return."""
        self._stopping.set()
        self._thread.join(15)
        assert not self._thread.is_alive(), "the server did not stop"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.host_port, timeout=10)
        return sock


def read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"the server kept the connection open; got {out[:500]!r}") from None
        if not chunk:
            return out
        out += chunk


def unread(sock: socket.socket) -> int | None:
    """Bytes sent on ``sock`` (a loopback TCP connection) that the server has not read yet:
    those not yet taken by its kernel, and those waiting in its socket; None when the
    connection is gone."""
    ours, theirs = sock.getsockname()[1], sock.getpeername()[1]
    sent = waiting = None
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            tx, rx = (int(q, 16) for q in fields[4].split(":"))
            if (local, remote) == (ours, theirs):
                sent = tx
            elif (local, remote) == (theirs, ours):
                waiting = rx
    return None if sent is None or waiting is None else sent + waiting


def start_site(tmp_path: Path, http: dict[str, Any] | None = None,
               fasjson: dict[str, Any] | None = None) -> tuple[Site, Callable[[], None]]:
    data: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path / 'n.db'}",
                            "http": {"listen": "127.0.0.1:0", "base_url": PUBLIC, **(http or {})}}
    if fasjson:
        data["fasjson"] = fasjson
    config = config_from_dict(data, str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": name, "emails": [f"{name}@example.org"], "ircnicks": [],
                         "groups": []} for name in ("alice", "bob", "carol")])
    statements = Statements()
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.add(statement))
    healthy = {"live": True, "ready": True}

    def unsubscribe(token: str) -> tuple[str, str]:
        if token != "good":
            raise InputError("bad token")
        return "alice", "git"

    return run_site(config, store, statements=statements, healthy=healthy,
                    unsubscribe=unsubscribe)


def run_site(config: Any, store: Store, *, statements: Statements | None = None,
             healthy: dict[str, bool] | None = None,
             unsubscribe: Callable[[str], tuple[str, str]] | None = None,
             base: str | None = None) -> tuple[Site, Callable[[], None]]:
    """A real WebServer for ``config`` over ``store``, started; and how to stop it (which
    closes the store too). Unsubscribe tokens are refused unless ``unsubscribe`` says."""
    outbox = Outbox(store)
    users = UserCache(config, store)
    users.preload(store.list_users())
    health = healthy if healthy is not None else {"live": True, "ready": True}

    def refuse(token: str) -> tuple[str, str]:
        raise InputError("no unsubscribe links on this site")

    web = WebServer(config, store=store, outbox=outbox, users=users,
                    health=lambda kind: (health[kind], {"status": kind}),
                    metrics=lambda: b"# service metrics\n",
                    check_unsubscribe=unsubscribe or refuse, unsubscribe=unsubscribe or refuse)
    host, port = web.address
    site = Site(web, store, outbox, users, base or f"http://{host}:{port}",
                statements or Statements(), health)
    site.run()

    def stop() -> None:
        site.halt()
        web.close()
        store.close()

    return site, stop


def _answers(site: Site) -> bool:
    try:
        return httpx.get(f"{site.base}/healthz/live", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    marker = request.node.get_closest_marker("http")
    s, stop = start_site(tmp_path, marker.kwargs if marker else None)
    try:
        yield s
    finally:
        stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "http(**settings): [http] settings for the site fixture")
    config.addinivalue_line("markers", "oidc(**settings): [web] settings for oidc_site")


@pytest.fixture
def oidc_peer(tmp_path: Path) -> Iterator[Callable[..., OidcPeer]]:
    """Starts a real OpenID Connect provider (oidc-provider) for a redirect URI; stops it
    after the test. ``oidc_peer(redirect_uri, accounts=...)`` returns the started peer."""
    peers: list[OidcPeer] = []

    def start(redirect_uri: str, **kw: Any) -> OidcPeer:
        peer = OidcPeer(redirect_uri, tmp_path / f"oidc-provider-{len(peers)}.log", **kw)
        peers.append(peer)
        peer.start()
        return peer

    try:
        yield start
    finally:
        for peer in peers:
            peer.stop()


@pytest.fixture
def oidc_site(tmp_path: Path, request: pytest.FixtureRequest,
              oidc_peer: Callable[..., OidcPeer]) -> Iterator[tuple[Site, OidcPeer]]:
    """The real server signing people in through a real OpenID Connect provider; the
    test's ``oidc(**settings)`` marker adds ``[web]`` settings."""
    marker = request.node.get_closest_marker("oidc")
    s, peer, stop = start_oidc_site(tmp_path, oidc_peer, **(marker.kwargs if marker else {}))
    try:
        yield s, peer
    finally:
        stop()
