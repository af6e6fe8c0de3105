"""Message icons, downloaded once into a bounded cache under ``$XDG_CACHE_HOME``.

Notification daemons load icons from files, not from web addresses. Each
icon is fetched once, kept as ``<sha256 of its address>.<ext>``, and the
least recently used are removed beyond ``limit`` files. An icon that cannot
be fetched (or is over :data:`MAX_BYTES`, or not an image) is not retried
for :data:`RETRY_AFTER` seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024
RETRY_AFTER = 3600.0
EXTENSIONS = {"image/png": ".png", "image/svg+xml": ".svg", "image/jpeg": ".jpg",
              "image/gif": ".gif", "image/x-icon": ".ico", "image/vnd.microsoft.icon": ".ico",
              "image/webp": ".webp"}


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


class IconCache:
    """Local files for icon addresses; see the module docstring."""

    def __init__(self, folder: Path, limit: int, client: httpx.Client | None = None):
        self.folder = folder
        self.limit = limit
        self._client = client
        self._failed: dict[str, float] = {}
        self._last_use = 0

    def path_for(self, icon: str | None) -> str:
        """What to give the daemon as ``app_icon``: a local file, an icon name, or ""."""
        if not icon:
            return ""
        parts = urlsplit(icon)
        if parts.scheme == "file" or icon.startswith("/"):
            return icon
        if parts.scheme not in ("http", "https"):
            return icon if "/" not in icon else ""  # an icon theme name
        if self.limit <= 0:
            return ""
        return self._cached(icon)

    def _cached(self, url: str) -> str:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        for found in self.folder.glob(key + ".*"):
            self._touch(found)  # recently used: kept longest
            return str(found)
        failed = self._failed.get(url)
        if failed is not None and time.monotonic() - failed < RETRY_AFTER:
            return ""
        try:
            path = self._download(url, key)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.info("icon %s not fetched: %s", url, exc)
            self._failed[url] = time.monotonic()
            if len(self._failed) > 1000:
                self._failed.clear()
            return ""
        self._trim()
        return str(path)

    def _download(self, url: str, key: str) -> Path:
        client = self._client or httpx.Client(timeout=10, follow_redirects=True)
        try:
            with client.stream("GET", url) as response:
                response.raise_for_status()
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                ext = EXTENSIONS.get(kind)
                if ext is None:
                    raise ValueError(f"not an image ({kind or 'no content type'})")
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise ValueError(f"larger than {MAX_BYTES} bytes")
        finally:
            if self._client is None:
                client.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".icon-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        path = self.folder / (key + ext)
        os.replace(tmp, path)
        self._touch(path)
        return path

    def _touch(self, path: Path) -> None:
        # File times tick in jiffies: each use gets a later time than the last, so that
        # the order of uses survives.
        self._last_use = max(time.time_ns(), self._last_use + 1000)
        os.utime(path, ns=(self._last_use, self._last_use))

    def _trim(self) -> None:
        files = [p for p in self.folder.iterdir() if not p.name.startswith(".")]
        if len(files) <= self.limit:
            return
        files.sort(key=lambda p: p.stat().st_mtime_ns)
        for old in files[:len(files) - self.limit]:
            try:
                old.unlink()
            except OSError:
                pass
