"""Sign-in credentials: sessions, personal access tokens and sign-in links.

Each credential is a random secret of 256 bits, given to its holder once and
stored only as its SHA-256 (:func:`secret_hash`). A secret is found by its
hash, then the stored hash is compared with the computed one in constant
time. Nothing here knows about HTTP: :mod:`notifier.web.api.auth` puts the
secrets into cookies and headers.

* a **session** belongs to a signed-in browser, until it expires or the
  person signs out (:meth:`Credentials.end_session`);
* a **personal access token** is scoped ``read`` or ``write``, named by its
  owner, listed with its last use, and revoked by deleting it;
* a **sign-in link** is single use and valid :data:`LINK_TTL` seconds.

Sessions and tokens are asked for on every request, so a lookup (found or
not) is remembered for :data:`CACHE_TTL` seconds: ending a session or
revoking a token through the same object takes effect at once, through
another process (``notifier tokens revoke``) within that time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from ..errors import InputError
from .engine import insert_ignoring
from .schema import api_tokens, login_links, sessions, settings
from .store import Store

#: seconds a sign-in link stays valid
LINK_TTL = 15 * 60
#: a session's or token's last use is written at most this often (seconds)
TOUCH_EVERY = 60
SCOPES = ("read", "write")
#: what each kind of secret starts with, so that a leaked one can be recognised
TOKEN_PREFIX = "ntfy_pat_"
_NAME_LIMIT = 100
#: seconds a session or token lookup is reused (see the module docstring)
CACHE_TTL = 5.0


def new_secret(prefix: str = "") -> str:
    """A fresh secret of 256 random bits, URL-safe, after ``prefix``."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """What is stored of ``secret``: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Session:
    id: int
    user: str
    method: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class Token:
    """A personal access token as listed: never its secret."""

    id: int
    user: str
    name: str
    scope: str
    created_at: float
    last_used: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scope": self.scope,
                "created_at": self.created_at, "last_used": self.last_used}


def _found(row: Any, hashed: str) -> bool:
    return row is not None and hmac.compare_digest(row.secret_hash, hashed)


class NotInMemory(Exception):
    """A lookup asked to answer from memory only needs the database."""


class _Recent:
    """Lookups by secret hash, each kept :data:`CACHE_TTL` seconds, ``capacity`` at most."""

    def __init__(self, capacity: int = 10000):
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                return False, None
            return True, entry[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (time.monotonic() + CACHE_TTL, value)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def forget(self, belongs: Callable[[Any], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, v) in self._entries.items() if v is not None and belongs(v)]:
                del self._entries[key]


class Credentials:
    """The credential tables of ``store``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        # hash -> [Session, last_seen] or None; hash -> [Token, last_used] or None
        self._sessions = _Recent()
        self._tokens = _Recent()

    # -- sessions --------------------------------------------------------

    def start_session(self, user: str, method: str, ttl: float) -> str:
        """A new session for ``user``, valid ``ttl`` seconds; returns its secret."""
        secret = new_secret()
        now = self.clock()
        with self.store._transaction(f"start a session for {user!r}") as conn:
            conn.execute(sessions.insert().values(
                secret_hash=secret_hash(secret), user=user, method=method, created_at=now,
                expires_at=now + ttl, last_seen=now))
        return secret

    def session(self, secret: str, *, memory_only: bool = False) -> Session | None:
        """The live session whose secret is ``secret``, or None.

        With ``memory_only``, :class:`NotInMemory` when answering needs the database.
        """
        hashed = secret_hash(secret)
        hit, seen = self._sessions.get(hashed)
        if not hit and memory_only:
            raise NotInMemory(secret)
        if not hit:
            with self.store._transaction("read a session", write=False) as conn:
                row = conn.execute(select(sessions).where(
                    sessions.c.secret_hash == hashed)).first()
            seen = [Session(row.id, row.user, row.method, row.created_at, row.expires_at),
                    row.last_seen] if _found(row, hashed) else None
            self._sessions.put(hashed, seen)
        now = self.clock()
        if seen is None or seen[0].expires_at <= now:
            return None
        if now - seen[1] > TOUCH_EVERY:
            if memory_only:
                raise NotInMemory(secret)
            with self.store._transaction("note a session's use") as conn:
                conn.execute(update(sessions).where(sessions.c.id == seen[0].id)
                             .values(last_seen=now))
            seen[1] = now
        return seen[0]  # type: ignore[no-any-return]

    def end_session(self, secret: str) -> bool:
        """Revoke the session ``secret`` on the server (sign-out); False if there was none."""
        hashed = secret_hash(secret)
        with self.store._transaction("end a session") as conn:
            ended = conn.execute(delete(sessions).where(
                sessions.c.secret_hash == hashed)).rowcount > 0
        self._sessions.put(hashed, None)
        return ended

    def end_sessions(self, user: str) -> int:
        """Revoke every session of ``user``; how many there were."""
        with self.store._transaction(f"end the sessions of {user!r}") as conn:
            ended = conn.execute(delete(sessions).where(sessions.c.user == user)).rowcount
        self._sessions.forget(lambda seen: seen[0].user == user)
        return ended

    # -- personal access tokens -------------------------------------------

    def create_token(self, user: str, name: str, scope: str) -> tuple[str, Token]:
        """A new token; returns its secret (shown once) and how it is listed.

        :class:`InputError` for an unknown scope, a bad name, or a name ``user``
        already gave to a token.
        """
        if scope not in SCOPES:
            raise InputError(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
        name = name.strip()
        if not name or len(name) > _NAME_LIMIT or not name.isprintable():
            raise InputError(f"name: a token's name is 1 to {_NAME_LIMIT} printable characters")
        secret = new_secret(TOKEN_PREFIX)
        now = self.clock()
        with self.store._transaction(f"create a token for {user!r}") as conn:
            inserted = conn.execute(
                insert_ignoring(self.store.dialect, api_tokens, ["user", "name"]).values(
                    secret_hash=secret_hash(secret), user=user, name=name, scope=scope,
                    created_at=now, last_used=None)).rowcount
            if not inserted:
                raise InputError(f"name: {user!r} already has a token named {name!r}")
            row = conn.execute(select(api_tokens).where(
                api_tokens.c.secret_hash == secret_hash(secret))).one()
        return secret, _token(row)

    def tokens(self, user: str) -> list[Token]:
        """``user``'s tokens, by name."""
        with self.store._transaction(f"list the tokens of {user!r}", write=False) as conn:
            rows = conn.execute(select(api_tokens).where(api_tokens.c.user == user)
                                .order_by(api_tokens.c.name)).all()
        return [_token(row) for row in rows]

    def revoke_token(self, user: str, token: int | str) -> bool:
        """Delete ``user``'s token with that id (an int) or name; False if there is none."""
        key = api_tokens.c.id if isinstance(token, int) else api_tokens.c.name
        with self.store._transaction(f"revoke a token of {user!r}") as conn:
            revoked = conn.execute(delete(api_tokens).where(
                api_tokens.c.user == user, key == token)).rowcount > 0
        self._tokens.forget(lambda seen: seen[0].user == user and (
            seen[0].id == token if isinstance(token, int) else seen[0].name == token))
        return revoked

    def token(self, secret: str, *, memory_only: bool = False) -> Token | None:
        """The token whose secret is ``secret``, or None; notes its use.

        With ``memory_only``, :class:`NotInMemory` when answering needs the database.
        """
        if not secret.startswith(TOKEN_PREFIX):
            return None
        hashed = secret_hash(secret)
        hit, seen = self._tokens.get(hashed)
        if not hit and memory_only:
            raise NotInMemory(secret)
        if not hit:
            with self.store._transaction("read a token", write=False) as conn:
                row = conn.execute(select(api_tokens).where(
                    api_tokens.c.secret_hash == hashed)).first()
            seen = [_token(row), row.last_used] if _found(row, hashed) else None
            self._tokens.put(hashed, seen)
        if seen is None:
            return None
        now = self.clock()
        if seen[1] is None or now - seen[1] > TOUCH_EVERY:
            if memory_only:
                raise NotInMemory(secret)
            with self.store._transaction("note a token's use") as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == seen[0].id)
                             .values(last_used=now))
            seen[:] = [dataclasses.replace(seen[0], last_used=now), now]
        return seen[0]  # type: ignore[no-any-return]

    # -- sign-in links ------------------------------------------------------

    def create_link(self, user: str, address: str | None = None, ttl: float = LINK_TTL) -> str:
        """A single-use sign-in link's secret for ``user``, valid ``ttl`` seconds."""
        secret = new_secret()
        now = self.clock()
        with self.store._transaction(f"create a sign-in link for {user!r}") as conn:
            conn.execute(login_links.insert().values(
                secret_hash=secret_hash(secret), user=user, address=address, created_at=now,
                expires_at=now + ttl, used_at=None))
        return secret

    def links_sent(self, address: str, within: float) -> int:
        """How many links were sent to ``address`` in the last ``within`` seconds."""
        with self.store._transaction("count sign-in links", write=False) as conn:
            return conn.execute(select(func.count()).select_from(login_links).where(
                login_links.c.address == address,
                login_links.c.created_at > self.clock() - within)).scalar() or 0

    def link_user(self, secret: str) -> str | None:
        """The user a live, unused link names, without using it; else None."""
        hashed = secret_hash(secret)
        with self.store._transaction("read a sign-in link", write=False) as conn:
            row = conn.execute(select(login_links).where(
                login_links.c.secret_hash == hashed)).first()
        if not _found(row, hashed) or row.used_at is not None or row.expires_at <= self.clock():
            return None
        return row.user

    def use_link(self, secret: str) -> str | None:
        """Use the link ``secret``: its user, or None if it is unknown, used or expired."""
        hashed = secret_hash(secret)
        now = self.clock()
        with self.store._transaction("use a sign-in link") as conn:
            row = conn.execute(select(login_links).where(
                login_links.c.secret_hash == hashed)).first()
            if not _found(row, hashed):
                return None
            used = conn.execute(update(login_links).where(
                login_links.c.id == row.id, login_links.c.used_at.is_(None),
                login_links.c.expires_at > now).values(used_at=now)).rowcount
        return row.user if used else None

    # -- housekeeping -----------------------------------------------------------

    def prune(self) -> int:
        """Delete expired sessions, and links expired a day ago; how many rows."""
        now = self.clock()
        with self.store._transaction("prune sessions and sign-in links") as conn:
            return (conn.execute(delete(sessions).where(sessions.c.expires_at <= now)).rowcount
                    + conn.execute(delete(login_links).where(
                        login_links.c.expires_at <= now - 86400)).rowcount)

    def signing_key(self, configured: str = "") -> bytes:
        """The key that signs cookies: ``configured``, else one made once and kept."""
        if configured:
            return configured.encode()
        with self.store._transaction("read the session key") as conn:
            conn.execute(insert_ignoring(self.store.dialect, settings, ["key"])
                         .values(key="session_key", value=secrets.token_hex(32)))
            value = conn.execute(select(settings.c.value).where(
                settings.c.key == "session_key")).scalar_one()
        return bytes.fromhex(value)


def _token(row: Any) -> Token:
    return Token(row.id, row.user, row.name, row.scope, row.created_at, row.last_used)
