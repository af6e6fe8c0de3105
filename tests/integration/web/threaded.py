"""The web app on a real socket, served from a thread, over a store the test filled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from notifier.config import Config
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from notifier.users.cache import UserCache
from notifier.web import WebServer
from tests.conftest import wait_for


@contextmanager
def served(config: Config, store: Store) -> Iterator[str]:
    """Serve ``store`` with the real server until the block ends; yields its base URL."""
    web = WebServer(config, store=store, outbox=Outbox(store), users=UserCache(config, store),
                    health=lambda kind: (True, {"status": kind}), metrics=lambda: b"",
                    check_unsubscribe=lambda t: ("", ""), unsubscribe=lambda t: ("", ""))
    stopping = threading.Event()
    thread = threading.Thread(target=web.run, args=(stopping,), daemon=True)
    thread.start()
    host, port = web.address
    url = f"http://{host}:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, what="the server to answer")
    try:
        yield url
    finally:
        stopping.set()
        thread.join(15)
        web.close()
