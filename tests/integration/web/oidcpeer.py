"""A real OpenID Connect provider on loopback: the npm package oidc-provider.

:class:`OidcPeer` runs ``tests/peers/oidc_provider.mjs`` with Node.js on a free port,
with one confidential client and the accounts it is given, and waits until its
discovery document answers. :func:`provider_answer` walks its development login and
consent pages with an httpx client, as a person with a browser would.
:func:`start_oidc_site` runs the real notifier HTTP server signing people in there.

Without ``node`` or the npm packages (``dev/setup`` installs both) a test that needs
the peer is skipped, and fails under CI=true.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
import pytest

from notifier.config import config_from_dict
from notifier.storage import Store
from tests.conftest import IN_CI, ROOT, free_port, wait_for

if TYPE_CHECKING:
    from tests.integration.web.conftest import Site

SCRIPT = ROOT / "tests" / "peers" / "oidc_provider.mjs"
CLIENT_ID = "notifier"
ALICE = {"email": "alice@example.org", "groups": ["packager", "qa"], "name": "Alice"}
#: an account with no email and no groups
BOB: dict[str, Any] = {}


def require_node() -> str:
    """The path of ``node``, with oidc-provider installed; else skip (fail in CI)."""
    node = shutil.which("node")
    message = None
    if node is None:
        message = "node is not installed (dev/setup installs it)"
    elif not (ROOT / "node_modules" / "oidc-provider" / "package.json").exists():
        message = "oidc-provider is not in node_modules (dev/setup installs it)"
    if message is not None:
        if IN_CI:
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(message)
    return node  # type: ignore[return-value]


@dataclass
class OidcPeer:
    """oidc-provider on 127.0.0.1, for one client whose redirect URI is ``redirect_uri``."""

    redirect_uri: str
    log_path: Path
    accounts: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"alice": ALICE, "bob": BOB})
    client_secret: str = "a-client-secret-for-tests-only"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = {"port": self.port, "accounts": self.accounts,
                  "client": {"client_id": CLIENT_ID, "client_secret": self.client_secret,
                             "redirect_uri": self.redirect_uri}}
        log = self.log_path.open("ab")
        # Its standard input is a pipe: when this process dies, the peer sees it close.
        self.process = subprocess.Popen([require_node(), str(SCRIPT), json.dumps(config)],
                                        cwd=ROOT, stdin=subprocess.PIPE, stdout=log,
                                        stderr=log)
        log.close()
        wait_for(self._answers, what=f"oidc-provider on {self.issuer}",
                 context=self.log, interval=0.05)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"oidc-provider exited with {self.process.returncode}:\n{self.log()}")
        try:
            response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.json()["issuer"] == self.issuer

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first form on a provider's page."""
    match = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert match, f"no form on {page.url}:\n{page.text[:2000]}"
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             page.text))
    return urljoin(str(page.url), unescape(match.group(1))), hidden


def provider_answer(client: httpx.Client, start: str, account: str, redirect_uri: str) -> str:
    """Follow ``start`` to the provider, sign in there as ``account`` and consent; return
    the URL the provider sends the browser back to (at ``redirect_uri``), not yet asked."""
    response = client.get(start)
    for _ in range(20):
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if target.startswith(redirect_uri):
                return target
            response = client.get(target)
            continue
        action, fields = _form(response)  # the login page, then the consent page
        if fields.get("prompt") == "login":
            fields.update(login=account, password="any")
        response = client.post(action, data=fields)
    raise AssertionError(f"the provider never sent the browser back; at {response.url}")


def sign_in_form(client: httpx.Client, start: str, account: str,
                 redirect_uri: str) -> httpx.Response:
    """:func:`provider_answer`, then the answer of the callback (not followed further)."""
    return client.get(provider_answer(client, start, account, redirect_uri))


def start_oidc_site(tmp_path: Path, peer_for: Callable[[str], OidcPeer],
                    **web: Any) -> tuple[Site, OidcPeer, Callable[[], None]]:
    """The real notifier HTTP server (WebServer, over SQLite) with OpenID Connect sign-in
    through a provider ``peer_for(redirect_uri)`` starts; ``web`` adds ``[web]`` keys."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    peer = peer_for(f"{base}/signin/oidc/callback")
    config = config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "http": {"listen": f"127.0.0.1:{port}", "base_url": base},
        "web": {"oidc_issuer": peer.issuer, "client_id": CLIENT_ID,
                "client_secret": peer.client_secret, **web}}, str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    from tests.integration.web.conftest import run_site

    site, stop = run_site(config, store, base=base)
    return site, peer, stop
