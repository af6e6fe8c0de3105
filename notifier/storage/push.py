"""Web Push subscriptions, and this installation's VAPID key.

A browser that allows notifications hands its page a *push subscription*:
the URL of its vendor's push service for this browser (the **endpoint**),
and two keys that encrypt every payload for it alone (RFC 8291): ``p256dh``,
its ECDH public key on P-256 (65 bytes, uncompressed), and ``auth``, a
16-byte secret, both base64url. :class:`PushSubscriptions` keeps them, one
row per user and endpoint.

Every subscription is checked when it is added (:func:`check_subscription`):
the keys must decode to the right lengths and be a point on the curve, and
the endpoint must be an ``https`` URL whose host resolves only to public
addresses (:func:`check_endpoint`), so that nobody can make the service send
requests into its own network. The webpush backend checks the endpoint again
before each send and connects to the addresses it checked. ``allow_private``
(``[webpush] allow_private_endpoints``, for tests only) accepts plain
``http`` and private, loopback and link-local addresses.

The VAPID key (RFC 8292) signs each request to a push service; it is made on
first use and kept in the ``settings`` table (:func:`vapid_key`). Its public
half, base64url, is the ``applicationServerKey`` a page subscribes with
(:func:`application_server_key`).

When a notification reached some of a user's browsers but failed for another
for now, the ones that took it are noted (:meth:`PushSubscriptions.note_taken`)
so that its retry goes to the others alone; the note is forgotten when the
notification is done, or after :data:`DELIVERIES_KEPT`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, func, select, update

from ..errors import InputError
from .engine import insert_ignoring
from .schema import push_deliveries as deliveries
from .schema import push_subscriptions as table
from .schema import settings
from .store import Store

#: the most subscriptions (browsers) one user may have
MAX_PER_USER = 20
#: the longest endpoint URL accepted
MAX_ENDPOINT = 2048
#: the longest browser label kept
MAX_LABEL = 200
VAPID_SETTING = "vapid_private_key"
#: seconds a record of which browsers took a notification is kept for its retries
DELIVERIES_KEPT = 7 * 86400


class UnresolvedEndpoint(InputError):
    """An endpoint's host could not be resolved now: may work later."""


@dataclass(frozen=True)
class Subscription:
    """One browser's push subscription."""

    id: int
    user: str
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str | None
    created_at: float
    last_success: float | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form for its owner: never the keys."""
        return {"id": self.id, "endpoint": self.endpoint, "user_agent": self.user_agent,
                "created_at": self.created_at, "last_success": self.last_success}


def b64url_decode(text: str) -> bytes:
    """Decode base64url, with or without padding; ValueError when it is not."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url text")
    stripped = text.rstrip("=")
    if any(c in stripped for c in "+/ \n"):
        raise ValueError("not base64url (it has characters of standard base64)")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from exc


def b64url(data: bytes) -> str:
    """``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def check_keys(p256dh: str, auth: str) -> None:
    """InputError (naming ``keys.p256dh`` or ``keys.auth``) unless both keys are usable."""
    try:
        point = b64url_decode(p256dh)
    except ValueError as exc:
        raise InputError(f"keys.p256dh: {exc}") from exc
    if len(point) != 65 or point[0] != 4:
        raise InputError(f"keys.p256dh: must be an uncompressed P-256 point (65 bytes "
                         f"starting with 0x04), not {len(point)} bytes")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InputError("keys.p256dh: not a point on the P-256 curve") from exc
    try:
        secret = b64url_decode(auth)
    except ValueError as exc:
        raise InputError(f"keys.auth: {exc}") from exc
    if len(secret) != 16:
        raise InputError(f"keys.auth: must be 16 bytes, not {len(secret)}")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_link_local or ip.is_loopback
                                 or ip.is_private or ip.is_reserved)


def check_endpoint(url: str, *, allow_private: bool = False,
                   resolve: Callable[..., list[Any]] = socket.getaddrinfo
                   ) -> tuple[str, int, list[str]]:
    """Check a push endpoint; return its host, port and the addresses it resolves to.

    :class:`InputError` (naming ``endpoint``) when it is not an ``https`` URL
    or any of its addresses is not public; :class:`UnresolvedEndpoint` when
    its host does not resolve now. With ``allow_private`` (tests only),
    ``http`` and any address are accepted.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_ENDPOINT:
        raise InputError(f"endpoint: must be a URL of at most {MAX_ENDPOINT} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"endpoint: {url!r:.100} is not a URL: {exc}") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise InputError(f"endpoint: a push service must be reached over https, "
                         f"not {parts.scheme or 'no scheme'!r}")
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        raise InputError("endpoint: must name a host, without a user name or password")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedEndpoint(f"endpoint: cannot resolve {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise UnresolvedEndpoint(f"endpoint: {host!r} has no address")
    if not allow_private:
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise InputError(f"endpoint: {host!r} resolves to {refused[0]}, which is not a "
                             "public address; push services are on the internet")
    return host, port, addresses


def check_subscription(endpoint: str, p256dh: str, auth: str, *,
                       allow_private: bool = False,
                       resolve: Callable[..., list[Any]] = socket.getaddrinfo) -> None:
    """InputError, naming the field, unless the subscription can be sent to."""
    check_keys(p256dh, auth)
    check_endpoint(endpoint, allow_private=allow_private, resolve=resolve)


def _label(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    text = "".join(c for c in user_agent if c.isprintable()).strip()
    return text[:MAX_LABEL] or None


def _subscription(row: Any) -> Subscription:
    return Subscription(row.id, row.user, row.endpoint, row.p256dh, row.auth, row.user_agent,
                        row.created_at, row.last_success)


class PushSubscriptions:
    """The push subscriptions, and the VAPID key, in ``store``'s database.

    ``resolve`` looks endpoints' hosts up (:func:`socket.getaddrinfo`).
    """

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 resolve: Callable[..., list[Any]] = socket.getaddrinfo):
        self.store = store
        self.clock = clock
        self.resolve = resolve

    def add(self, user: str, endpoint: str, p256dh: str, auth: str,
            user_agent: str | None = None, *, allow_private: bool = False) -> Subscription:
        """Add (or renew, for the same endpoint) a subscription of ``user``, checked first.

        :class:`InputError` naming the field that is wrong, or when ``user``
        has :data:`MAX_PER_USER` subscriptions already.
        """
        check_subscription(endpoint, p256dh, auth, allow_private=allow_private,
                           resolve=self.resolve)
        label = _label(user_agent)
        now = self.clock()
        with self.store._transaction(f"add a push subscription for {user!r}") as conn:
            existing = conn.execute(select(table.c.id).where(
                table.c.user == user, table.c.endpoint == endpoint)).scalar()
            if existing is not None:
                conn.execute(update(table).where(table.c.id == existing).values(
                    p256dh=p256dh, auth=auth, user_agent=label))
            else:
                count = conn.execute(select(func.count()).select_from(table).where(
                    table.c.user == user)).scalar() or 0
                if count >= MAX_PER_USER:
                    raise InputError(f"endpoint: {user!r} has {MAX_PER_USER} browsers "
                                     "subscribed already; remove one first")
                conn.execute(table.insert().values(
                    user=user, endpoint=endpoint, p256dh=p256dh, auth=auth,
                    user_agent=label, created_at=now, last_success=None))
            row = conn.execute(select(table).where(
                table.c.user == user, table.c.endpoint == endpoint)).one()
        return _subscription(row)

    def list(self, user: str) -> list[Subscription]:
        """``user``'s subscriptions, oldest first."""
        with self.store._transaction(f"list the push subscriptions of {user!r}",
                                     write=False) as conn:
            rows = conn.execute(select(table).where(table.c.user == user)
                                .order_by(table.c.id)).all()
        return [_subscription(row) for row in rows]

    def remove(self, user: str, subscription_id: int) -> bool:
        """Remove ``user``'s subscription ``subscription_id``; False if they have none such."""
        with self.store._transaction(f"remove a push subscription of {user!r}") as conn:
            removed = conn.execute(delete(table).where(
                table.c.user == user, table.c.id == subscription_id)).rowcount > 0
            if removed:
                conn.execute(delete(deliveries).where(
                    deliveries.c.subscription_id == subscription_id))
            return removed

    def remove_gone(self, subscription_id: int) -> bool:
        """Remove a subscription its push service says is gone (404, 410)."""
        with self.store._transaction("remove a push subscription that is gone") as conn:
            conn.execute(delete(deliveries).where(
                deliveries.c.subscription_id == subscription_id))
            return conn.execute(delete(table).where(
                table.c.id == subscription_id)).rowcount > 0

    def pending(self, user: str, msg_id: str) -> tuple[list[Subscription], set[int]]:
        """``user``'s subscriptions, oldest first, and the ids of those noted as having
        taken ``msg_id`` already (:meth:`note_taken`)."""
        with self.store._transaction(f"list the push subscriptions of {user!r}",
                                     write=False) as conn:
            rows = conn.execute(select(table).where(table.c.user == user)
                                .order_by(table.c.id)).all()
            taken = set(conn.execute(
                select(deliveries.c.subscription_id)
                .join(table, table.c.id == deliveries.c.subscription_id)
                .where(table.c.user == user, deliveries.c.msg_id == msg_id)).scalars())
        return [_subscription(row) for row in rows], taken

    def note_taken(self, subscription_ids: list[int], msg_id: str) -> None:
        """Note that these subscriptions took ``msg_id`` (its retry is not for them);
        notes older than :data:`DELIVERIES_KEPT` are forgotten meanwhile."""
        now = self.clock()
        with self.store._transaction("note which browsers took a notification") as conn:
            conn.execute(delete(deliveries).where(
                deliveries.c.delivered_at < now - DELIVERIES_KEPT))
            for subscription_id in subscription_ids:
                conn.execute(insert_ignoring(self.store.dialect, deliveries,
                                             ["subscription_id", "msg_id"]).values(
                    subscription_id=subscription_id, msg_id=msg_id, delivered_at=now))

    def forget_taken(self, subscription_ids: list[int], msg_id: str) -> None:
        """Forget the notes of :meth:`note_taken`: ``msg_id`` is done."""
        with self.store._transaction("forget which browsers took a notification") as conn:
            conn.execute(delete(deliveries).where(
                deliveries.c.msg_id == msg_id,
                deliveries.c.subscription_id.in_(subscription_ids)))

    def note_success(self, subscription_id: int) -> None:
        """Record that the push service accepted a notification for it now."""
        with self.store._transaction("note a push subscription's success") as conn:
            conn.execute(update(table).where(table.c.id == subscription_id)
                         .values(last_success=self.clock()))

    def vapid_key(self) -> ec.EllipticCurvePrivateKey:
        """This installation's VAPID key, made on first use and kept."""
        query = select(settings.c.value).where(settings.c.key == VAPID_SETTING)
        with self.store._transaction("read the VAPID key", write=False) as conn:
            value = conn.execute(query).scalar()
        if value is None:
            fresh = ec.generate_private_key(ec.SECP256R1())
            raw = fresh.private_numbers().private_value.to_bytes(32, "big")
            with self.store._transaction("make the VAPID key") as conn:
                # Two processes starting at once: the first one's key is kept.
                conn.execute(insert_ignoring(self.store.dialect, settings, ["key"])
                             .values(key=VAPID_SETTING, value=b64url(raw)))
                value = conn.execute(query).scalar_one()
        return ec.derive_private_key(int.from_bytes(b64url_decode(value), "big"),
                                     ec.SECP256R1())


def application_server_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The VAPID public key as a page subscribes with it: uncompressed point, base64url."""
    return b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

