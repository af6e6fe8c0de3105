"""Destinations: each person's email addresses, IRC nicks and Matrix ids, and proof that they
are theirs.

A user record (``notifier users import``, or the identity provider at first
sign-in) lists ``emails`` and ``ircnicks``; those count as verified because
of where they came from. A person may add more through the API: each one is
a row of table ``destinations``, ``pending`` until the person proves it
reaches them, then ``verified``.

* An email address is proved by a link holding a secret of 256 bits, valid
  :data:`LINK_TTL` seconds, used once.
* An IRC nick, or a Matrix user id, is proved by a code of 128 bits sent to
  it in a private (direct) message, valid :data:`CODE_TTL` seconds, used once; after
  :data:`MAX_ATTEMPTS` wrong tries it is spent, and a new one must be sent.

Only the SHA-256 of a secret is stored; a presented secret is looked up by its
hash and compared in constant time.

**What delivery sees.** :meth:`Destinations.deliverable` turns a stored user
record into the one the pipeline and the digests read: its own addresses,
then the verified ones the person added; a delivery setting (``address`` or
``nick``) naming a pending address is left out, so the default is used. A
pending address is never sent to. The service applies it once per user, when
the record is read into its cache; every change made here is also a ``user``
entry of the change log, so a running ``notifier serve`` reads the user again
at once.

The rows with origin ``record`` mirror the user record, so that the API can
list every destination with an id; they are brought in line with the record
whenever a person's destinations are read (:meth:`Destinations.listing`).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from ..errors import InputError
from .credentials import new_secret, secret_hash
from .schema import destinations, users
from .store import Store

#: the kinds of destination, and the list of the user record each one extends
KINDS: dict[str, str] = {"email": "emails", "irc": "ircnicks", "matrix": "matrix_ids"}
#: the key of the delivery settings that picks a kind's address
SETTING_KEYS: dict[str, str] = {"email": "address", "irc": "nick", "matrix": "user_id"}
PENDING, VERIFIED = "pending", "verified"
#: from the user record (identity provider, 'notifier users import'), or added by the person
RECORD, PERSON = "record", "person"
#: seconds a confirmation link stays valid
LINK_TTL = 24 * 3600
#: seconds an IRC code stays valid
CODE_TTL = 3600
#: wrong codes after which the code is spent
MAX_ATTEMPTS = 5
#: seconds between two secrets sent for the same destination
RESEND_AFTER = 60.0
#: destinations a person may add
MAX_ADDED = 20


class DestinationError(InputError):
    """A change to a destination that cannot be made; ``reason`` says why, in one word.

    Reasons: ``exists``, ``too-many``, ``from-record``, ``not-pending``,
    ``too-soon`` (``retry_after`` seconds), ``expired``, ``spent``, ``wrong``
    (``attempts_left``).
    """

    def __init__(self, reason: str, message: str, *, retry_after: float = 0.0,
                 attempts_left: int = 0):
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        self.attempts_left = attempts_left


@dataclass(frozen=True)
class Destination:
    """One destination as listed: never its secret."""

    id: int
    user: str
    kind: str
    address: str
    state: str
    origin: str
    created_at: float
    verified_at: float | None
    #: when the current link or code stops working; None when there is none
    expires_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> Destination:
        expires = row.secret_expires if row.secret_hash is not None else None
        return cls(row.id, row.user, row.kind, row.address, row.state, row.origin,
                   row.created_at, row.verified_at, expires)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "address": self.address,
                "state": self.state, "origin": self.origin, "created_at": self.created_at,
                "verified_at": self.verified_at, "expires_at": self.expires_at}


def new_code() -> str:
    """A fresh IRC code: 128 random bits, as 26 letters and digits in groups of 4-5."""
    text = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    return "-".join(text[i:i + 5] for i in range(0, len(text), 5))


def code_hash(code: str) -> str:
    """The stored hash of an IRC code, whatever its case, spaces and dashes."""
    return secret_hash("".join(c for c in code.upper() if c.isalnum()))


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _addresses(record: dict[str, Any] | None, kind: str) -> list[str]:
    values = (record or {}).get(KINDS[kind])
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def deliverable(record: dict[str, Any], rows: Iterable[Any]) -> dict[str, Any]:
    """``record`` as delivery must see it, given the person's own destination ``rows``.

    Each list (``emails``, ``ircnicks``) gets the verified addresses the
    person added after its own; a delivery setting naming one of their pending
    addresses (not also in the record's list) is dropped, so the default is
    used. Anything else is left as stored, for the tolerant readers of
    :mod:`notifier.delivery.settings`.
    """
    rows = [row for row in rows if row.origin == PERSON]
    if not rows:
        return record
    out = dict(record)
    delivery = record.get("delivery")
    for kind, listed in KINDS.items():
        own = record.get(listed)
        verified = [r.address for r in rows if r.kind == kind and r.state == VERIFIED]
        pending = {r.address for r in rows if r.kind == kind and r.state == PENDING}
        if verified and (own is None or isinstance(own, list)):
            out[listed] = list(dict.fromkeys([*(own or []), *verified]))
        settings = delivery.get(kind) if isinstance(delivery, dict) else None
        if not isinstance(settings, dict):
            continue
        chosen = settings.get(SETTING_KEYS[kind])
        if isinstance(chosen, str) and chosen in pending \
                and chosen not in _addresses(record, kind):
            delivery = {**delivery, kind: {k: v for k, v in settings.items()
                                           if k != SETTING_KEYS[kind]}}
            out["delivery"] = delivery
    return out


#: the destinations people added, of the user now holding their name (not an earlier one)
_PERSONS = select(destinations).join(users, users.c.name == destinations.c.user).where(
    destinations.c.origin == PERSON, destinations.c.created_at >= users.c.created_at)


def _plan(user: str, record: Any, rows: list[Any], now: float) -> list[Any]:
    """The statements that bring ``user``'s destination ``rows`` in line with their ``record``.

    ``record`` rows mirror its ``emails`` and ``ircnicks``; an address the
    record took over from the person is verified by where it came from now.
    Rows older than the user record (or with no record at all) belonged to
    an earlier user of that name, and go.
    """
    out: list[Any] = []
    stored = dict(record._mapping) if record is not None else {}
    for row in rows:
        if record is None or row.created_at < record.created_at:
            out.append(delete(destinations).where(destinations.c.id == row.id))
    if record is None:
        return out
    rows = [row for row in rows if row.created_at >= record.created_at]
    for kind in KINDS:
        wanted = _addresses(stored, kind)
        mine = [r for r in rows if r.kind == kind]
        for row in mine:
            if row.origin == RECORD and row.address not in wanted:
                out.append(delete(destinations).where(destinations.c.id == row.id))
            elif row.origin == PERSON and row.address in wanted:
                out.append(update(destinations).where(destinations.c.id == row.id).values(
                    origin=RECORD, state=VERIFIED, secret_hash=None,
                    verified_at=row.verified_at or now))
        have = {r.address for r in mine}
        out.extend(destinations.insert().values(
            user=user, kind=kind, address=address, state=VERIFIED, origin=RECORD, attempts=0,
            created_at=now, verified_at=now) for address in wanted if address not in have)
    return out


class Destinations:
    """The destinations of every user in ``store``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    # -- what delivery sees ----------------------------------------------

    def deliverable(self, record: dict[str, Any]) -> dict[str, Any]:
        """The stored user ``record`` as delivery must see it (see :func:`deliverable`)."""
        with self.store._transaction(f"read the destinations of {record['name']!r}",
                                     write=False) as conn:
            rows = conn.execute(_PERSONS.where(destinations.c.user == record["name"])).all()
        return deliverable(record, rows)

    def deliverable_all(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`deliverable` for many records, in one query."""
        by_user: dict[str, list[Any]] = {}
        with self.store._transaction("read the destinations", write=False) as conn:
            for row in conn.execute(_PERSONS):
                by_user.setdefault(row.user, []).append(row)
        return [deliverable(r, by_user.get(r["name"], ())) for r in records]

    # -- listing -----------------------------------------------------------

    def listing(self, user: str) -> list[Destination]:
        """Every destination of ``user``, oldest first, in line with their user record.

        A read, unless the record changed since the last one (then one write).
        """
        with self.store._transaction(f"list the destinations of {user!r}",
                                     write=False) as conn:
            rows, record = self._read(conn, user)
        if _plan(user, record, rows, self.clock()):
            with self.store._transaction(f"list the destinations of {user!r}") as conn:
                rows = self._reconciled(conn, user)
        return [Destination.from_row(row) for row in rows]

    def get(self, user: str, ident: int) -> Destination | None:
        """The destination ``ident`` of ``user``; None when there is none (or not theirs)."""
        with self.store._transaction(f"read a destination of {user!r}", write=False) as conn:
            row = self._row(conn, user, ident)
        return None if row is None else Destination.from_row(row)

    def verified_addresses(self, user: str, kind: str) -> list[str]:
        """The addresses of ``kind`` that may be sent to: the record's, then verified ones."""
        return [d.address for d in self.listing(user) if d.kind == kind and d.state == VERIFIED]

    def _row(self, conn: Connection, user: str, ident: int) -> Any:
        return conn.execute(select(destinations).where(
            destinations.c.id == ident, destinations.c.user == user)).first()

    @staticmethod
    def _read(conn: Connection, user: str) -> tuple[list[Any], Any]:
        record = conn.execute(select(users.c.emails, users.c.ircnicks, users.c.created_at)
                              .where(users.c.name == user)).first()
        rows = conn.execute(select(destinations).where(destinations.c.user == user)
                            .order_by(destinations.c.id)).all()
        return rows, record

    def _reconciled(self, conn: Connection, user: str) -> list[Any]:
        """The user's rows, after bringing them in line with the user record (see :func:`_plan`)."""
        rows, record = self._read(conn, user)
        changes = _plan(user, record, rows, self.clock())
        if not changes:
            return rows
        for change in changes:
            conn.execute(change)
        self.store._log_changes(conn, [("user", "upsert", user, None, None)])
        return self._read(conn, user)[0]

    # -- adding and proving --------------------------------------------------

    def add(self, user: str, kind: str, address: str) -> tuple[Destination, str]:
        """Add a pending destination; returns it and the secret to send (link or code).

        The address must already be checked. :class:`DestinationError` when
        the user already has it (``exists``) or has added :data:`MAX_ADDED`.
        """
        if kind not in KINDS:
            raise InputError(f"unknown kind of destination {kind!r}")
        secret, hashed, ttl = self._secret(kind)
        with self.store._transaction(f"add a destination for {user!r}") as conn:
            rows = self._reconciled(conn, user)
            if any(r.kind == kind and _same(r.address, address) for r in rows):
                raise DestinationError("exists", f"{address!r} is already one of your "
                                                 f"{kind} destinations")
            if sum(r.origin == PERSON for r in rows) >= MAX_ADDED:
                raise DestinationError("too-many", f"at most {MAX_ADDED} destinations may be "
                                                   f"added; remove one first")
            now = self.clock()
            result = conn.execute(destinations.insert().values(
                user=user, kind=kind, address=address, state=PENDING, origin=PERSON,
                secret_hash=hashed, secret_expires=now + ttl, attempts=0, sent_at=now,
                created_at=now))
            row = self._row(conn, user, result.inserted_primary_key[0])
            self.store._log_changes(conn, [("user", "upsert", user, None, None)])
        return Destination.from_row(row), secret

    def renew(self, user: str, ident: int) -> tuple[Destination, str] | None:
        """A new secret for the pending destination ``ident`` (the old one stops working).

        None when there is no such destination; :class:`DestinationError`
        ``not-pending``, or ``too-soon`` within :data:`RESEND_AFTER` of the last.
        """
        with self.store._transaction(f"renew a destination's secret for {user!r}") as conn:
            row = self._row(conn, user, ident)
            if row is None:
                return None
            if row.state != PENDING:
                raise DestinationError("not-pending", f"{row.address!r} is already verified")
            now = self.clock()
            wait = (row.sent_at or 0.0) + RESEND_AFTER - now
            if wait > 0:
                raise DestinationError("too-soon", f"one was sent less than "
                                                   f"{RESEND_AFTER:.0f} s ago",
                                       retry_after=wait)
            secret, hashed, ttl = self._secret(row.kind)
            conn.execute(update(destinations).where(destinations.c.id == row.id).values(
                secret_hash=hashed, secret_expires=now + ttl, attempts=0, sent_at=now))
            self.store._log_changes(conn, [("user", "upsert", user, None, None)])
            row = self._row(conn, user, ident)
        return Destination.from_row(row), secret

    @staticmethod
    def _secret(kind: str) -> tuple[str, str, float]:
        if kind == "email":
            secret = new_secret()
            return secret, secret_hash(secret), LINK_TTL
        code = new_code()
        return code, code_hash(code), CODE_TTL

    def link(self, secret: str) -> Destination | None:
        """The pending email destination whose live link secret is ``secret``, or None."""
        hashed = secret_hash(secret)
        with self.store._transaction("read a confirmation link", write=False) as conn:
            row = conn.execute(select(destinations).where(
                destinations.c.secret_hash == hashed, destinations.c.kind == "email")).first()
        if not self._live(row, hashed):
            return None
        return Destination.from_row(row)

    def confirm_link(self, secret: str) -> Destination | None:
        """Verify the email destination whose link secret is ``secret``; None if it is not live.

        The secret is used up: a second confirmation finds nothing.
        """
        hashed = secret_hash(secret)
        with self.store._transaction("confirm an address") as conn:
            row = conn.execute(select(destinations).where(
                destinations.c.secret_hash == hashed, destinations.c.kind == "email")).first()
            if not self._live(row, hashed):
                return None
            self._verify(conn, row)
            return Destination.from_row(self._row(conn, row.user, row.id))

    def _live(self, row: Any, hashed: str) -> bool:
        return (row is not None and row.state == PENDING and row.secret_hash is not None
                and hmac.compare_digest(row.secret_hash, hashed)
                and (row.secret_expires or 0.0) > self.clock())

    def _verify(self, conn: Connection, row: Any) -> None:
        done = conn.execute(update(destinations).where(and_(
            destinations.c.id == row.id, destinations.c.secret_hash == row.secret_hash)).values(
            state=VERIFIED, secret_hash=None, secret_expires=None, verified_at=self.clock()))
        if done.rowcount != 1:
            raise DestinationError("spent", "this code or link was just used")
        self.store._log_changes(conn, [("user", "upsert", row.user, None, None)])

    def confirm_code(self, user: str, ident: int, code: str) -> Destination | None:
        """Verify the pending destination ``ident`` of ``user`` with ``code``.

        None when there is no such destination. :class:`DestinationError`
        ``not-pending``, ``spent`` (no live code: ask for a new one),
        ``expired``, or ``wrong`` (with ``attempts_left``; a wrong code is
        counted even though it raises).
        """
        hashed = code_hash(code)
        wrong: DestinationError | None = None
        with self.store._transaction(f"verify a destination of {user!r}") as conn:
            row = self._row(conn, user, ident)
            if row is None:
                return None
            if row.state != PENDING:
                raise DestinationError("not-pending", f"{row.address!r} is already verified")
            if row.secret_hash is None or row.attempts >= MAX_ATTEMPTS:
                raise DestinationError("spent", "this code is used up; ask for a new one")
            if (row.secret_expires or 0.0) <= self.clock():
                raise DestinationError("expired", "this code has expired; ask for a new one")
            if hmac.compare_digest(row.secret_hash, hashed):
                self._verify(conn, row)
                return Destination.from_row(self._row(conn, user, ident))
            attempts = row.attempts + 1
            left = MAX_ATTEMPTS - attempts
            conn.execute(update(destinations).where(destinations.c.id == row.id).values(
                attempts=attempts, **({"secret_hash": None} if left <= 0 else {})))
            wrong = DestinationError(
                "wrong", "wrong code; " + (f"{left} tries left" if left > 0 else
                                           "no tries left: ask for a new code"),
                attempts_left=left)
        raise wrong

    # -- removing, and delivery settings ----------------------------------------

    def remove(self, user: str, ident: int) -> bool:
        """Delete a destination the person added; False when there is none.

        A delivery setting naming it is dropped in the same transaction.
        :class:`DestinationError` ``from-record`` for one from the user record.
        """
        with self.store._transaction(f"remove a destination of {user!r}") as conn:
            row = self._row(conn, user, ident)
            if row is None:
                return False
            if row.origin == RECORD:
                raise DestinationError("from-record", f"{row.address!r} comes from your account "
                                                      f"(the identity provider); change it there")
            conn.execute(delete(destinations).where(destinations.c.id == row.id))
            stored = conn.execute(select(users.c.delivery).where(users.c.name == user)).first()
            delivery = stored.delivery if stored is not None else None
            settings = delivery.get(row.kind) if isinstance(delivery, dict) else None
            key = SETTING_KEYS[row.kind]
            if isinstance(settings, dict) and settings.get(key) == row.address:
                delivery = {**delivery, row.kind: {k: v for k, v in settings.items()
                                                   if k != key}}
                conn.execute(update(users).where(users.c.name == user).values(
                    delivery=delivery, updated_at=self.clock()))
            self.store._log_changes(conn, [("user", "upsert", user, None, None)])
        return True

    def delivery(self, user: str) -> dict[str, Any] | None:
        """The stored ``delivery`` settings of ``user`` (None: the defaults)."""
        with self.store._transaction(f"read the delivery settings of {user!r}",
                                     write=False) as conn:
            row = conn.execute(select(users.c.delivery).where(users.c.name == user)).first()
        return None if row is None else row.delivery

    def set_delivery(self, user: str, delivery: dict[str, Any] | None) -> bool:
        """Replace the ``delivery`` settings of ``user``, already checked; False: no such user."""
        with self.store._transaction(f"set the delivery settings of {user!r}") as conn:
            done = conn.execute(update(users).where(users.c.name == user).values(
                delivery=delivery, updated_at=self.clock()))
            if done.rowcount == 0:
                return False
            self.store._log_changes(conn, [("user", "upsert", user, None, None)])
        return True
