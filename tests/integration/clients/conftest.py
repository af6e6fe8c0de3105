"""A real ``notifier serve`` for the desktop app's tests, a private bus, and the app's config.

alice's rule ``desk`` sends every message on ``*.desk.*`` to her desktop
(the live stream); ``[[meta.mappings]]`` give those messages a link, an
icon (served by a small HTTP server of the test's own) and a severity.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.storage import Store
from notifier.storage.credentials import Credentials
from tests.conftest import free_port, wait_for
from tests.integration.rawbus import RawPublisher
from tests.integration.serveproc import ServeProcess

from .peers import App, MockDaemon, PrivateBus, png

pytestmark = pytest.mark.integration

ICON_PNG = png(2, 2, b"\0" + b"\xff\0\0" * 2 + b"\0" + b"\0\xff\0" * 2)


class _Icons(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(ICON_PNG)))
        self.end_headers()
        self.wfile.write(ICON_PNG)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Server:
    """``notifier serve`` with alice's desktop rule, and how to publish to it."""

    tmp: Path
    serve: ServeProcess
    store: Store
    inbound: str
    read_token: str
    write_token: str
    feed_token: str
    icon_url: str
    icon_hits: list[str]
    publisher: RawPublisher | None = None

    @property
    def url(self) -> str:
        return f"http://{self.serve.http}"

    def send(self, title: str, kind: str = "thing", link: str | None = None) -> str:
        """Publish one message on ``...desk.<kind>``; its msg_id."""
        if self.publisher is None:
            self.publisher = RawPublisher(self.inbound)
        body = {"title": title, "url": link or f"https://example.org/{title.replace(' ', '-')}"}
        topic, payload = self.publisher.builder.encode("desk", kind, body)
        self.publisher.send(topic, payload)
        return str(json.loads(payload)["msg_id"])

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=10,
                            headers={"Authorization": f"Bearer {self.write_token}"})

    def config(self, **notifications: Any) -> str:
        """The app's desktop.toml for alice on this server."""
        lines = ['mode = "server"', "[server]", f'url = "{self.url}"', 'user = "alice"',
                 f'token = "{self.read_token}"', f'api_token = "{self.write_token}"',
                 "[notifications]", 'app_name = "notifier-test"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in notifications.items()]
        return "\n".join(lines) + "\n"

    def restart(self) -> None:
        self.serve.stop()
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
        self.serve.start()


def _serve_config(tmp: Path, http: str, inbound: str, icon_url: str) -> Path:
    path = tmp / "notifier.toml"
    path.write_text(f"""database_url = "sqlite:///{tmp / 'notifier.db'}"
[bus]
relay_inbound = "{inbound}"
endpoints = ["tcp://127.0.0.1:{free_port()}"]
[http]
listen = "{http}"
[email]
maildir = "{tmp / 'Maildir'}"
[[meta.mappings]]
topic = "*.desk.alert"
app = "desk"
summary = "{{title}}"
link_path = "url"
icon = "{icon_url}"
severity = "error"
[[meta.mappings]]
topic = "*.desk.*"
app = "desk"
summary = "{{title}}"
link_path = "url"
icon = "{icon_url}"
severity = "info"
""")
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    icons = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Icons", (_Icons,),
                                                                  {"hits": []}))
    threading.Thread(target=icons.serve_forever, daemon=True).start()
    icon_url = f"http://127.0.0.1:{icons.server_address[1]}/icon.png"
    http_address = f"127.0.0.1:{free_port()}"
    inbound = f"tcp://127.0.0.1:{free_port()}"
    config = _serve_config(tmp_path, http_address, inbound, icon_url)
    store = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]}])
    store.upsert_rules([{"user": "alice", "name": "desk",
                         "track": {"kind": "topics", "patterns": ["*.desk.*"]},
                         "destinations": ["desktop"]}])
    credentials = Credentials(store)
    write = credentials.create_token("alice", "desktop", "write")[0]
    read = credentials.create_token("alice", "stream", "read")[0]
    feed = str((store.get_user("alice") or {})["feed_token"])
    serve = ServeProcess(config, http_address, tmp_path / "serve.log").start()
    world = Server(tmp_path, serve, store, inbound, read, write, feed, icon_url,
                   icons.RequestHandlerClass.hits)  # type: ignore[attr-defined]
    try:
        yield world
    finally:
        if world.publisher is not None:
            world.publisher.close()
        serve.ensure_stopped()
        store.close()
        icons.shutdown()
        icons.server_close()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[PrivateBus]:
    session = PrivateBus(tmp_path)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def daemon(bus: PrivateBus, tmp_path: Path) -> Iterator[MockDaemon]:
    mock = MockDaemon(bus, tmp_path).start()
    try:
        yield mock
    finally:
        if mock.proc is not None:
            mock.stop()


@pytest.fixture
def make_app(bus: PrivateBus, tmp_path: Path) -> Iterator[Any]:
    """``make_app(config_text)``: an app (not started) with its own home; stopped at the end."""
    apps: list[App] = []

    def make(config: str, home: Path | None = None) -> App:
        app = App(bus, home or tmp_path / f"home{len(apps)}", config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.stop()


def wait_calls(daemon: MockDaemon, count: int, what: str, app: App | None = None
               ) -> list[dict[str, Any]]:
    """The daemon's Notify calls, once there are at least ``count``."""
    return wait_for(lambda: len(calls := daemon.calls()) >= count and calls,
                    what, context=app.log if app else None)
