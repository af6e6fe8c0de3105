"""The real web server (WebServer over SQLite, uvicorn in a thread) for the page tests.

``pages_site`` serves at its own address as ``base_url``, so that a browser
keeps its cookies; carol is an admin; mail goes to a real SMTP server
(aiosmtpd). :func:`sign_in` signs a client in through a real sign-in link.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.config import config_from_dict
from notifier.storage import Store
from notifier.storage.credentials import Credentials
from notifier.storage.inbox import inbox_row, write_rows
from tests.conftest import free_port
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.web.conftest import Site, run_site

USERS = ("alice", "bob", "carol")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def topic_rule(user: str, name: str, pattern: str, **extra: Any) -> dict[str, Any]:
    return {"user": user, "name": name, "track": {"kind": "topics", "patterns": [pattern]},
            "destinations": ["email"], **extra}


@dataclass
class PagesSite:
    site: Site
    smtp: SmtpPeer

    @property
    def base(self) -> str:
        return self.site.base

    @property
    def store(self) -> Store:
        return self.site.store

    def client(self) -> httpx.Client:
        """A client that follows no redirects (tests check each one)."""
        return httpx.Client(base_url=self.base, timeout=10)

    def link(self, user: str) -> str:
        """A fresh sign-in link for ``user``, as ``notifier users login-link`` prints."""
        return f"{self.base}/signin/link/{Credentials(self.store).create_link(user)}"

    def notify(self, user: str, n: int, rule: str = "builds", **row: Any) -> None:
        """``n`` notifications for ``user``, from ``rule``, written as the ingest writes them."""
        now = time.time()
        rows = [inbox_row(user, f"msg-{user}-{rule}-{i}-{now}", title=f"Build {i} of {rule}",
                          link=f"https://example.org/builds/{i}", app="koji",
                          topic="org.example.prod.buildsys.build", severity="info",
                          timestamp=now - n + i, rules=[rule],
                          why={rule: f"the topic matched pattern '*.build' ({i})"}) | row
                for i in range(n)]
        with self.store._transaction("test inbox rows", write=True) as conn:
            write_rows(conn, rows, now)


def sign_in(pages: PagesSite, user: str) -> tuple[httpx.Client, str]:
    """A client signed in as ``user`` through a sign-in link, and its CSRF token."""
    with pages.client() as first:
        answer = first.post(pages.link(user))
        assert answer.status_code == 303, answer.text
        page = first.get("/tokens")
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, page.text
        client = pages.client()  # not opened yet: the test opens it with "with"
        client.cookies = first.cookies
    return client, found.group(1)


def start_pages_site(tmp_path: Path, smtp: SmtpPeer, settings: dict[str, Any] | None = None,
                     **web: Any) -> tuple[Site, Any]:
    """The server at its own address, with ``[web] web`` and the other ``settings``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = config_from_dict({
        **(settings or {}),
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "http": {"listen": f"127.0.0.1:{port}", "base_url": base},
        "web": {"admins": ["carol"], **web}, **smtp.config()}, str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": name, "emails": [f"{name}@example.org"], "ircnicks": [],
                         "groups": []} for name in USERS])
    return run_site(config, store, base=base)


@pytest.fixture
def pages_site(tmp_path: Path, smtp: SmtpPeer) -> Iterator[PagesSite]:
    site, stop = start_pages_site(tmp_path, smtp)
    try:
        yield PagesSite(site, smtp)
    finally:
        stop()
