"""The service's JSON API (``/api/v1``), called off the main loop.

Only what the app needs: the unread count, muting a rule, and marking
everything read. Each call runs on one worker thread; its outcome comes back
to the main loop through ``post``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A call failed; the message says why, for the person."""


class Api:
    """Calls to ``{url}/api/v1`` with ``token``; results are handed to ``post``."""

    def __init__(self, url: str, token: str, post: Callable[[Callable[[], None]], None]):
        self.base = f"{url}/api/v1"
        self.token = token
        self.post = post
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="api")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            with httpx.Client(timeout=10) as client:
                response = client.request(method, self.base + path, json=body, headers={
                    "Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {path}: the service cannot be reached ({exc})") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail") or response.reason_phrase
            except ValueError:
                detail = response.reason_phrase
            raise ApiError(f"{method} {path}: {response.status_code} {detail}")
        return response.json() if response.content else None

    def submit(self, work: Callable[[], Any], done: Callable[[Any, ApiError | None], None]
               ) -> None:
        """Run ``work`` on the worker; then ``done(result, error)`` on the main loop."""
        def run() -> None:
            try:
                result, error = work(), None
            except ApiError as exc:
                result, error = None, exc
            self.post(lambda: done(result, error))

        self._pool.submit(run)

    def counts(self) -> dict[str, int]:
        return dict(self._request("GET", "/notifications/counts"))

    def mute(self, rule: str) -> Any:
        return self._request("POST", f"/rules/{quote(rule, safe='')}/mute")

    def mark_all_read(self) -> dict[str, int]:
        """Mark every notification up to the newest read; the new counts."""
        items = self._request("GET", "/notifications?limit=1")["items"]
        if not items:
            return {"total": 0, "unread": 0}
        answer = self._request("POST", "/notifications/read-all", {"up_to": items[0]["id"]})
        return dict(answer["counts"])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
