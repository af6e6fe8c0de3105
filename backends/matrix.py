"""Matrix: each person's notifications as direct messages from a bot account.

The bot (``[matrix] homeserver``, ``user_id``, ``access_token``) sends each
notification to the person's direct room as an ``m.notice`` with a plain
``body`` and an HTML ``formatted_body`` (``org.matrix.custom.html``), as the
render stage made them (``content["body"]`` and ``content["html"]``).

The direct room
---------------

For a person it has no room for yet, the backend looks, in this order:

1. in its room cache, a JSON file (``[matrix] rooms_file``, by default
   ``$XDG_DATA_HOME/notifier/matrix-rooms.json``). The first time a cached room
   is used in a run, and every :data:`RECHECK` seconds after, the person's
   membership is checked (joined or invited): a person who left gets a new room;
2. in the bot's ``m.direct`` account data, for a room the person is still in;
3. otherwise it creates a private room with ``is_direct`` and the person
   invited, and adds it to ``m.direct``.

The cache is a file, not a table, because a backend only delivers (the
storage layer is not its to use) and only one Matrix sender runs; the file
is written atomically, and losing it costs a look at ``m.direct``, not a
second room. A send refused with ``M_FORBIDDEN`` (the bot was removed)
forgets the room and looks again once.

Failures
--------

* ``M_LIMIT_EXCEEDED``: :class:`~notifier.errors.TemporaryDeliveryError`
  with ``retry_after`` from ``retry_after_ms``; the outbox waits that long;
* the homeserver unreachable, timing out or answering 5xx, and a token it
  does not know (``M_UNKNOWN_TOKEN``): temporary, so nothing is lost while
  it is fixed;
* an address that is not ``@name:server``, or a person the homeserver does
  not know (``M_NOT_FOUND`` for the profile): permanent.

Each notification has its own transaction id (from its key), so a retry
after an answer that got lost is not shown twice by the homeserver.

matrix-nio is asyncio; the backend runs its own event loop in one thread,
and :meth:`MatrixBackend.send` (called from any worker thread) waits for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomPreset,
    RoomSendResponse,
)

from ..config import Config, data_dir
from ..errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from ..notification import Notification
from .base import Backend

log = logging.getLogger(__name__)

_USER_ID = re.compile(r"@[^\s:]+:\S+")
#: seconds after which a room in use is checked again for the person's membership
RECHECK = 600.0
_HTML_FORMAT = "org.matrix.custom.html"
#: errors that say "not now" rather than "never"
_TEMPORARY_CODES = frozenset({"M_LIMIT_EXCEEDED", "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})


class _Forbidden(Exception):
    """The homeserver refused a send into a room (the bot is no longer in it)."""


class RoomCache:
    """Person -> direct room id, kept in a JSON file for one bot account.

    A file written for another bot account (or unreadable) starts empty.
    """

    def __init__(self, path: Path, bot: str):
        self.path = path
        self.bot = bot
        self._lock = threading.Lock()
        self.rooms: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("matrix: ignoring the room cache %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("user_id") != self.bot or \
                not isinstance(data.get("rooms"), dict):
            return {}
        return {k: v for k, v in data["rooms"].items()
                if isinstance(k, str) and isinstance(v, str)}

    def get(self, person: str) -> str | None:
        return self.rooms.get(person)

    def put(self, person: str, room_id: str | None) -> None:
        """Remember (or, with None, forget) ``person``'s room, and write the file."""
        with self._lock:
            if room_id is None:
                self.rooms.pop(person, None)
            else:
                self.rooms[person] = room_id
            text = json.dumps({"user_id": self.bot, "rooms": self.rooms}, indent=1,
                              sort_keys=True)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".matrix-rooms.")
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(tmp, self.path)
            except OSError as exc:  # the cache saves round trips; delivery goes on
                log.warning("matrix: cannot write the room cache %s: %s", self.path, exc)


class MatrixBackend(Backend):
    """Sends each notification as an ``m.notice`` to ``notification.address``
    (``@name:server``) in the bot's direct room with that person."""

    name = "matrix"
    max_length = None
    single_line = False
    markup = "html"

    def __init__(self, config: Config):
        super().__init__(config)
        self.settings = config.matrix
        self._setup_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: AsyncClient | None = None
        self._rooms: RoomCache | None = None
        self._room_lock: asyncio.Lock | None = None
        #: person -> when their room was last checked (monotonic seconds)
        self._checked: dict[str, float] = {}

    @property
    def where(self) -> str:
        """For the start-up log."""
        return f"{self.settings.user_id} on {self.settings.homeserver}"

    def rooms_path(self) -> Path:
        """The room cache file."""
        return Path(self.settings.rooms_file) if self.settings.rooms_file else \
            data_dir() / "matrix-rooms.json"

    def setup(self) -> None:
        """Check the settings, load the room cache and start the event loop's thread."""
        with self._setup_lock:
            if self._thread is not None:
                return
            for key in ("homeserver", "user_id", "access_token"):
                if not getattr(self.settings, key):
                    raise ConfigError(f"[matrix] '{key}' is not set; the matrix destination "
                                      "needs the bot's homeserver, user id and access token")
            self._rooms = RoomCache(self.rooms_path(), self.settings.user_id)
            self._checked = {}
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name="matrix", daemon=True)
            self._loop = loop
            self._thread.start()
            ready.wait()
            self._call(self._open())

    async def _open(self) -> None:
        self._room_lock = asyncio.Lock()
        client = AsyncClient(
            self.settings.homeserver, self.settings.user_id,
            config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0,
                                     request_timeout=self.settings.timeout))
        client.user_id = self.settings.user_id
        client.access_token = self.settings.access_token
        self._client = client

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            # Each request has its own timeout; this bounds a lookup's several requests.
            return future.result(self.settings.timeout * 6 + 5)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TemporaryDeliveryError(
                f"matrix: no answer from {self.settings.homeserver} in time") from exc

    def send(self, notification: Notification) -> None:
        """Deliver one notification; see the module docstring for the outcomes."""
        person = notification.address
        if not _USER_ID.fullmatch(person or ""):
            raise PermanentDeliveryError(f"'{person}' is not a Matrix user id like "
                                         f"@name:server (user {notification.user})")
        body = notification.content.get("body")
        if not body:
            raise PermanentDeliveryError(f"matrix notification {notification.msg_id} for "
                                         f"{person} has no body")
        content: dict[str, Any] = {"msgtype": "m.notice", "body": body}
        if notification.content.get("html"):
            content["format"] = _HTML_FORMAT
            content["formatted_body"] = notification.content["html"]
        tx_id = "notifier-" + hashlib.sha256(notification.key.encode("utf-8")).hexdigest()[:32]
        if self._thread is None:
            self.setup()
        self._call(self._deliver(person, content, tx_id))

    async def _deliver(self, person: str, content: dict[str, Any], tx_id: str) -> None:
        for attempt in (1, 2):
            room_id = await self._room_for(person)
            try:
                await self._send_to(room_id, person, content, tx_id)
                return
            except _Forbidden as exc:
                assert self._rooms is not None
                self._rooms.put(person, None)
                self._checked.pop(person, None)
                if attempt == 2:
                    raise TemporaryDeliveryError(
                        f"matrix: the homeserver refused the message to {person} in its "
                        f"new room {room_id}") from exc.__cause__

    async def _send_to(self, room_id: str, person: str, content: dict[str, Any],
                       tx_id: str) -> None:
        assert self._client is not None
        response = await self._request(
            person, self._client.room_send(room_id, "m.room.message", content, tx_id=tx_id))
        if isinstance(response, RoomSendResponse):
            return
        if isinstance(response, ErrorResponse) and response.status_code == "M_FORBIDDEN":
            forbidden = _Forbidden(room_id)
            forbidden.__cause__ = _answer(response)
            raise forbidden
        raise self._error(person, response, "sending the message")

    async def _room_for(self, person: str) -> str:
        assert self._rooms is not None and self._room_lock is not None
        async with self._room_lock:  # two sends to a new person make one room
            room_id = self._rooms.get(person)
            now = time.monotonic()
            if room_id is not None and now - self._checked.get(person, -RECHECK) < RECHECK:
                return room_id
            if room_id is not None and await self._usable(room_id, person):
                self._checked[person] = now
                return room_id
            direct = await self._direct_rooms()
            for candidate in reversed(direct.get(person, [])):
                if candidate != room_id and await self._usable(candidate, person):
                    break
            else:
                candidate = await self._create(person, direct)
            self._rooms.put(person, candidate)
            self._checked[person] = now
            return candidate

    async def _usable(self, room_id: str, person: str) -> bool:
        """Whether the bot is in ``room_id`` and the person joined or is invited."""
        assert self._client is not None
        for who, wanted in ((self.settings.user_id, {"join"}), (person, {"join", "invite"})):
            response = await self._request(
                person, self._client.room_get_state_event(room_id, "m.room.member", who))
            if isinstance(response, RoomGetStateEventResponse):
                if response.content.get("membership") not in wanted:
                    return False
                continue
            if isinstance(response, ErrorResponse) and response.status_code in (
                    "M_FORBIDDEN", "M_NOT_FOUND"):
                return False
            raise self._error(person, response, f"checking the room {room_id}")
        return True

    async def _create(self, person: str, direct: dict[str, list[str]]) -> str:
        assert self._client is not None
        profile = await self._request(person, self._client.get_profile(person))
        if isinstance(profile, ErrorResponse):
            status = getattr(profile.transport_response, "status", None)
            if profile.status_code == "M_NOT_FOUND" or status == 404:
                raise PermanentDeliveryError(
                    f"matrix: the homeserver knows no user {person}") from _answer(profile)
            raise self._error(person, profile, "looking the person up")
        response = await self._request(person, self._client.room_create(
            is_direct=True, invite=[person], preset=RoomPreset.trusted_private_chat))
        if not isinstance(response, RoomCreateResponse):
            raise self._error(person, response, "creating the direct room")
        room_id = response.room_id
        direct = {**direct, person: [*direct.get(person, []), room_id]}
        try:
            await self._account_data("PUT", direct)
        except DeliveryError as exc:  # the room works; m.direct is for the person's client
            log.warning("matrix: cannot mark %s as direct with %s: %s", room_id, person, exc)
        log.info("matrix: created the direct room %s with %s", room_id, person)
        return room_id

    async def _direct_rooms(self) -> dict[str, list[str]]:
        data = await self._account_data("GET")
        return {k: [r for r in v if isinstance(r, str)] for k, v in data.items()
                if isinstance(k, str) and isinstance(v, list)}

    async def _account_data(self, method: str, data: dict[str, Any] | None = None
                            ) -> dict[str, Any]:
        """GET or PUT the bot's ``m.direct`` (nio has no call for global account data)."""
        assert self._client is not None
        path = (f"/_matrix/client/v3/user/{quote(self.settings.user_id, safe='')}"
                "/account_data/m.direct")
        headers = {"Authorization": f"Bearer {self.settings.access_token}",
                   "Content-Type": "application/json"}
        body = json.dumps(data) if data is not None else None
        try:
            async with asyncio.timeout(self.settings.timeout):
                response = await self._client.send(method, path, body, headers)
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryDeliveryError(
                f"matrix: {self.settings.homeserver}: {type(exc).__name__}: {exc}") from exc
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if response.status == 404 and method == "GET":
            return {}
        if response.status != 200 or not isinstance(answer, dict):
            error = ErrorResponse.from_dict(answer if isinstance(answer, dict) else {})
            error.transport_response = response
            raise self._error(self.settings.user_id, error, f"{method} m.direct")
        return answer

    async def _request(self, person: str, call: Any) -> Any:
        """Await one nio call; a homeserver that cannot be reached is temporary."""
        try:
            return await call
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryDeliveryError(
                f"matrix: cannot reach {self.settings.homeserver} (to {person}): "
                f"{type(exc).__name__}: {exc}") from exc

    def _error(self, person: str, response: Any, doing: str) -> DeliveryError:
        """The delivery error for a homeserver's refusal."""
        cause = _answer(response)
        status = getattr(getattr(response, "transport_response", None), "status", None)
        code = getattr(response, "status_code", None)
        text = f"matrix: {doing} for {person}: {cause}"
        error: DeliveryError
        if code in _TEMPORARY_CODES or status is None or status == 429 or status >= 500:
            error = TemporaryDeliveryError(text)
            retry_ms = getattr(response, "retry_after_ms", None)
            if code == "M_LIMIT_EXCEEDED" or status == 429:
                error.retry_after = (retry_ms or 1000) / 1000
        else:
            error = PermanentDeliveryError(text)
        error.__cause__ = cause
        return error

    def close(self) -> None:
        """Close the HTTP session and stop the loop's thread. Safe to call more than once."""
        with self._setup_lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            client = self._client
            if client is not None:
                try:
                    asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
                except Exception as exc:  # closing what may already be gone
                    log.debug("matrix: closing the client: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            self._thread = self._loop = self._client = None


class MatrixError(Exception):
    """What the homeserver answered: its ``errcode``, message and HTTP status."""


def _answer(response: Any) -> MatrixError:
    status = getattr(getattr(response, "transport_response", None), "status", None)
    code = getattr(response, "status_code", None) or "no errcode"
    message = getattr(response, "message", None) or type(response).__name__
    return MatrixError(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))
