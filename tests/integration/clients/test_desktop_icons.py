"""The icon cache against a real HTTP server: each icon fetched once, the cache bounded,
and what is not an image left out."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.clients.desktop.icons import MAX_BYTES, IconCache

from .conftest import ICON_PNG

pytestmark = pytest.mark.integration


class Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path.startswith("/big"):
            body, kind = b"\0" * (MAX_BYTES + 1), "image/png"
        elif self.path.startswith("/page"):
            body, kind = b"<html></html>", "text/html"
        else:
            body, kind = ICON_PNG, "image/png"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[tuple[str, list[str]]]:
    handler = type("H", (Handler,), {"hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()


def test_fetched_once_and_bounded(site: tuple[str, list[str]], tmp_path: Path) -> None:
    base, hits = site
    cache = IconCache(tmp_path / "icons", limit=2)
    first = cache.path_for(f"{base}/a.png")
    assert Path(first).read_bytes() == ICON_PNG
    assert cache.path_for(f"{base}/a.png") == first
    assert hits == ["/a.png"]
    cache.path_for(f"{base}/b.png")
    cache.path_for(f"{base}/a.png")  # used again: kept longer than b
    cache.path_for(f"{base}/c.png")
    kept = sorted(p.name for p in (tmp_path / "icons").iterdir())
    assert len(kept) == 2 and Path(first).name in kept
    assert hits == ["/a.png", "/b.png", "/c.png"]


def test_what_is_not_a_small_image_is_left_out_and_not_asked_again(
        site: tuple[str, list[str]], tmp_path: Path) -> None:
    base, hits = site
    cache = IconCache(tmp_path / "icons", limit=10)
    assert cache.path_for(f"{base}/big.png") == ""
    assert cache.path_for(f"{base}/page") == ""
    assert cache.path_for(f"{base}/page") == ""
    assert hits == ["/big.png", "/page"]
    assert cache.path_for("dialog-information") == "dialog-information"
    assert cache.path_for("/usr/share/icons/x.png") == "/usr/share/icons/x.png"
    assert cache.path_for("ftp://example.org/x.png") == ""
