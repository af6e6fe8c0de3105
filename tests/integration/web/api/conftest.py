"""A real uvicorn server with the API, reached over plain http so that cookies flow.

``api_site`` is the site of ``tests/integration/web/conftest.py`` (alice, bob
and carol, over SQLite) with ``[http] base_url`` set to the server's own
loopback address: sign-in links in mails lead back to it, and session cookies
are not ``Secure``. Mark a test ``@pytest.mark.api(web={...}, email={...})``
to add config tables. Helpers sign a user in by a sign-in link
(:func:`sign_in`) and make personal access tokens (:func:`make_token`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from notifier.config import config_from_dict
from notifier.storage import Store
from notifier.storage.credentials import Credentials
from notifier.web.api.auth import COOKIE, CSRF_HEADER
from tests.conftest import free_port
from tests.integration.web.conftest import Site, Statements, run_site

API = "/api/v1"
USERS = ("alice", "bob", "carol")


def start_api_site(tmp_path: Path, sections: dict[str, dict[str, Any]] | None = None,
                   ) -> tuple[Site, Callable[[], None]]:
    """A started site whose base_url is its own http address; ``sections`` add config."""
    port = free_port()
    data: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "http": {"listen": f"127.0.0.1:{port}", "base_url": f"http://127.0.0.1:{port}"},
        # the service's own mail (sign-in links, confirmations), unless a test names a server
        "email": {"maildir": str(tmp_path / "Maildir")}}
    for table, values in (sections or {}).items():
        data.setdefault(table, {}).update(values)
    config = config_from_dict(data, str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": name, "emails": [f"{name}@example.org"], "ircnicks": [],
                         "groups": []} for name in USERS])
    statements = Statements()
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.add(statement))
    return run_site(config, store, statements=statements)


@pytest.fixture
def api_site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    marker = request.node.get_closest_marker("api")
    site, stop = start_api_site(tmp_path, marker.kwargs if marker else None)
    try:
        yield site
    finally:
        stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "api(**tables): config tables for the api_site fixture")


@dataclass
class Browser:
    """A signed-in browser: an httpx client holding the session cookie, and its CSRF token."""

    name: str
    client: httpx.Client
    csrf: str

    @property
    def cookie(self) -> str:
        value = self.client.cookies.get(COOKIE)
        assert value, f"{self.name} has no session cookie"
        return value

    def send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A request with the cookie and, on unsafe methods, the CSRF header."""
        headers = dict(kw.pop("headers", None) or {})
        if method.upper() not in ("GET", "HEAD", "OPTIONS"):
            headers.setdefault(CSRF_HEADER, self.csrf)
        return self.client.request(method, path, headers=headers, **kw)


def credentials(site: Site) -> Credentials:
    """The credentials the server itself uses (and its clock)."""
    return site.web.api.credentials


def link_secret(site: Site, name: str, **kw: Any) -> str:
    return credentials(site).create_link(name, **kw)


def sign_in(site: Site, name: str, clients: list[httpx.Client] | None = None) -> Browser:
    """``name`` signs in through a sign-in link's page and button, as a browser would."""
    client = site.client()
    if clients is not None:
        clients.append(client)
    secret = link_secret(site, name)
    page = client.get(f"/signin/link/{secret}")
    assert page.status_code == 200, page.text
    used = client.post(f"/signin/link/{secret}")
    assert used.status_code == 303, used.text
    me = client.get(f"{API}/users/me")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == name
    return Browser(name, client, me.json()["csrf_token"])


@pytest.fixture
def browsers(api_site: Site) -> Iterator[Callable[[str], Browser]]:
    """``browsers(name)``: a fresh signed-in browser; closed after the test."""
    clients: list[httpx.Client] = []
    yield lambda name: sign_in(api_site, name, clients)
    for client in clients:
        client.close()


def make_token(site: Site, name: str, scope: str = "read", label: str | None = None) -> str:
    """A personal access token of ``name``: its secret."""
    global _tokens
    _tokens += 1
    secret, _ = credentials(site).create_token(name, label or f"token {_tokens}", scope)
    return secret


_tokens = 0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def thread_safe_clock(start: float) -> Callable[..., Any]:
    """A clock to put into the server's Credentials: ``clock()`` reads, ``clock.advance(s)``."""
    lock = threading.Lock()
    now = [start]

    def clock() -> float:
        with lock:
            return now[0]

    def advance(seconds: float) -> None:
        with lock:
            now[0] += seconds

    clock.advance = advance  # type: ignore[attr-defined]
    return clock
