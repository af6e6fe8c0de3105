"""Web Push: notifications to a person's browsers, through their vendors' push services.

Each notification goes to every push subscription of its user (the
address is the user name; see :mod:`notifier.storage.push`). For each, the
backend POSTs to the subscription's endpoint (RFC 8030):

* the **payload** (:mod:`notifier.backends.pushpayload` describes it, for
  the service worker that reads it too), encrypted for that browser alone
  with ``aes128gcm`` (RFC 8188, 8291; pywebpush and http_ece);
* ``Authorization: vapid t=<JWT>, k=<public key>`` (RFC 8292; py_vapid),
  the JWT signed with the installation's VAPID key, with ``aud`` the
  endpoint's origin, ``sub`` the ``[webpush] contact`` and an ``exp`` 12
  hours ahead;
* ``TTL`` (``[webpush] ttl``, never 0) and ``Urgency`` from the severity:
  error ``high``, warning ``normal``, info ``low``, debug ``very-low``.

The endpoint is checked again before each send (https, every address public,
unless ``[webpush] allow_private_endpoints``, for tests) and the request
goes to an address that was checked, so a host that changes its DNS answer
after the check reaches nothing else.

What the push services answer:

* 2xx: delivered; the subscription's ``last_success`` is noted;
* 404 or 410: the browser unsubscribed: the subscription is removed, which
  is no failure of the notification;
* 429 and 5xx, and a service that cannot be reached: temporary; the error
  carries ``retry_after`` (seconds) when the service sent ``Retry-After``,
  and the outbox waits that long before the next attempt;
* any other answer: permanent for that subscription.

When a browser's push fails for now (429, 5xx, unreachable), the
notification fails temporarily, whatever the others answered; the browsers
that took it are noted (:meth:`~notifier.storage.push.PushSubscriptions.note_taken`),
and the outbox's retry pushes to the others alone. Otherwise it is delivered
when one browser took it (now or on an earlier attempt) or every one was
gone, and fails permanently when every one refused it. A user with no
subscription at all is a :class:`~notifier.errors.PermanentDeliveryError`.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from py_vapid import Vapid02, VapidException
from pywebpush import WebPusher, WebPushException

from ..config import Config, parse_duration
from ..errors import (
    ConfigError,
    DeliveryError,
    InputError,
    PermanentDeliveryError,
    StorageError,
    TemporaryDeliveryError,
)
from ..notification import Notification
from ..storage.push import (
    PushSubscriptions,
    Subscription,
    UnresolvedEndpoint,
    application_server_key,
    check_endpoint,
)
from ..storage.store import Store
from .base import Backend
from .pushpayload import MAX_PAYLOAD, payload

__all__ = ["MAX_PAYLOAD", "URGENCY", "WebpushBackend", "origin", "payload", "retry_after"]

log = logging.getLogger(__name__)

#: the Urgency header by severity (RFC 8030 section 5.3)
URGENCY = {"error": "high", "warning": "normal", "info": "low", "debug": "very-low"}
#: seconds a VAPID JWT stays valid (RFC 8292: at most 24 hours)
JWT_LIFETIME = 12 * 3600
#: HTTP clients kept, one per push service host
_CLIENTS = 16


class _Gone(Exception):
    """The subscription is gone (404, 410)."""


def origin(url: str) -> str:
    """The origin of ``url`` (RFC 6454): scheme and host, lower case, and a port unless
    it is the scheme's default. The ``aud`` of the VAPID JWT."""
    parts = urlsplit(url)
    scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    if port is None or port == {"https": 443, "http": 80}.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class WebpushBackend(Backend):
    """Sends notifications to the push services of each user's subscribed browsers.

    ``resolve`` is :func:`socket.getaddrinfo`'s stand-in (tests).
    """

    name = "webpush"
    max_length = None
    single_line = False
    markup = None

    def __init__(self, config: Config, *,
                 resolve: Callable[..., list[Any]] = socket.getaddrinfo):
        super().__init__(config)
        self.settings = config.webpush
        self._resolve = resolve
        self._ttl = 0
        self._store: Store | None = None
        self._subscriptions: PushSubscriptions | None = None
        self._vapid: Vapid02 | None = None
        self._clients: OrderedDict[str, httpx.Client] = OrderedDict()

    @property
    def where(self) -> str:
        """For the start-up log."""
        return f"VAPID contact {self.settings.contact}"

    def setup(self) -> None:
        """Check the settings and open the database; make the VAPID key on first use."""
        if not self.settings.contact:
            raise ConfigError("[webpush] 'contact' is not set: the push services need a "
                              "mailto: or https: URI to reach whoever runs this service")
        try:
            self._ttl = parse_duration(self.settings.ttl)
        except ValueError as exc:
            raise ConfigError(f"[webpush] 'ttl': {exc}") from exc
        self._open()

    def _open(self) -> tuple[PushSubscriptions, Vapid02]:
        if self._subscriptions is None or self._vapid is None:
            if not self._ttl:
                self._ttl = parse_duration(self.settings.ttl)
            store = Store.from_config(self.config)
            try:
                subscriptions = PushSubscriptions(store)
                vapid = Vapid02(subscriptions.vapid_key())
                # py_vapid's own check of the contact, once, where a mistake stops serve
                vapid.sign({"sub": self.settings.contact, "aud": "https://push.example.org"})
            except VapidException as exc:
                store.close()
                raise ConfigError(f"[webpush] 'contact' {self.settings.contact!r}: "
                                  f"{exc}") from exc
            except BaseException:
                store.close()
                raise
            self._store, self._subscriptions, self._vapid = store, subscriptions, vapid
        return self._subscriptions, self._vapid

    def public_key(self) -> str:
        """The VAPID public key, base64url (the browsers' ``applicationServerKey``)."""
        _, vapid = self._open()
        return application_server_key(vapid.private_key)

    def send(self, notification: Notification) -> None:
        """Push ``notification`` to every browser its user subscribed that has not
        taken it yet (on an earlier attempt)."""
        body = payload(notification)
        subscriptions, vapid = self._open()
        user, msg_id = notification.address, notification.msg_id
        try:
            subs, taken = subscriptions.pending(user, msg_id)
        except StorageError as exc:
            raise TemporaryDeliveryError(f"webpush to {user!r}: {exc}") from exc
        if not subs:
            raise PermanentDeliveryError(f"webpush: {user!r} has no browser subscribed")
        sent: list[int] = []
        failures: list[DeliveryError] = []
        for sub in subs:
            if sub.id in taken:
                continue
            try:
                self._push(sub, body, notification, vapid)
            except _Gone:
                self._note(subscriptions.remove_gone, sub)
                log.info("webpush: %s's subscription %d is gone; removed", user, sub.id)
            except DeliveryError as exc:
                failures.append(exc)
            else:
                sent.append(sub.id)
                self._note(subscriptions.note_success, sub)
        if any(isinstance(f, TemporaryDeliveryError) for f in failures):
            if sent:  # the retry is for the other browsers alone
                self._remember(subscriptions.note_taken, sent, msg_id, user)
            done = len(sent) + len(taken)
            raise _combined(user, failures, f"{done} of {len(subs)} browsers took it; ")
        if taken:
            self._remember(subscriptions.forget_taken, sorted(taken), msg_id, user)
        if sent or taken or not failures:
            for failure in failures:
                log.warning("webpush to %s (%s): one browser failed: %s", user, msg_id,
                            failure)
            return
        raise _combined(user, failures)

    @staticmethod
    def _remember(change: Callable[[list[int], str], object], ids: list[int], msg_id: str,
                  user: str) -> None:
        """Note or forget which browsers took ``msg_id``; on a database error the retry
        may reach them twice (their browsers show it once: the tag is the same)."""
        try:
            change(ids, msg_id)
        except StorageError as exc:
            log.warning("webpush to %s (%s): %s", user, msg_id, exc)

    @staticmethod
    def _note(change: Callable[[int], object], sub: Subscription) -> None:
        """Record what a push service said; a database error then must not undo the push."""
        try:
            change(sub.id)
        except StorageError as exc:
            log.warning("webpush: subscription %d of %s: %s", sub.id, sub.user, exc)

    def _push(self, sub: Subscription, body: bytes, notification: Notification,
              vapid: Vapid02) -> None:
        where = f"webpush to {sub.user!r} (subscription {sub.id})"
        try:
            host, port, addresses = check_endpoint(
                sub.endpoint, allow_private=self.settings.allow_private_endpoints,
                resolve=self._resolve)
        except UnresolvedEndpoint as exc:
            raise TemporaryDeliveryError(f"{where}: {exc}") from exc
        except InputError as exc:
            raise PermanentDeliveryError(f"{where}: {exc}") from exc
        parts = urlsplit(sub.endpoint)
        audience = origin(sub.endpoint)
        try:
            encrypted = WebPusher({"endpoint": sub.endpoint,
                                   "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
                                  ).encode(body, "aes128gcm")["body"]
        except (WebPushException, ValueError) as exc:  # keys that slipped past the checks
            raise PermanentDeliveryError(f"{where}: cannot encrypt for its keys: {exc}") from exc
        headers = {
            **vapid.sign({"sub": self.settings.contact, "aud": audience,
                          "exp": int(time.time()) + JWT_LIFETIME}),
            "TTL": str(self._ttl),
            "Urgency": URGENCY.get(notification.severity, "normal"),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Host": audience.partition("://")[2],
        }
        client = self._client(host)
        response: httpx.Response | None = None
        error: Exception | None = None
        for address in addresses:
            literal = f"[{address}]" if ":" in address else address
            url = parts._replace(netloc=f"{literal}:{port}").geturl()
            request = client.build_request("POST", url, content=encrypted, headers=headers,
                                           extensions={"sni_hostname": host})
            try:
                response = client.send(request, stream=True)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = exc  # nothing was sent: the next address may answer
            except httpx.HTTPError as exc:  # it may have arrived: no second address
                raise TemporaryDeliveryError(f"{where}: {host}: {exc}") from exc
        if response is None:
            raise TemporaryDeliveryError(f"{where}: cannot reach {host}: {error}") from error
        try:
            self._answer(where, response)
        finally:
            response.close()

    def _answer(self, where: str, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in (404, 410):
            raise _Gone()
        detail = f"{where}: the push service answered {status} {response.reason_phrase}"
        text = _start(response).strip()[:200]
        if text:
            detail += f": {text}"
        cause = httpx.HTTPStatusError(detail, request=response.request, response=response)
        if status == 429 or status >= 500:
            busy = TemporaryDeliveryError(detail)
            busy.retry_after = retry_after(response.headers.get("Retry-After"), time.time())
            raise busy from cause
        raise PermanentDeliveryError(detail) from cause

    def _client(self, host: str) -> httpx.Client:
        """A client for ``host`` alone: a connection is never reused for another host."""
        client = self._clients.get(host)
        if client is None:
            client = httpx.Client(timeout=self.settings.timeout, trust_env=False,
                                  follow_redirects=False)
            self._clients[host] = client
            while len(self._clients) > _CLIENTS:
                _, old = self._clients.popitem(last=False)
                old.close()
        else:
            self._clients.move_to_end(host)
        return client

    def close(self) -> None:
        """Close the HTTP clients and the database. Safe to call more than once."""
        clients, self._clients = self._clients, OrderedDict()
        for client in clients.values():
            client.close()
        store, self._store = self._store, None
        self._subscriptions = self._vapid = None
        if store is not None:
            store.close()


def _start(response: httpx.Response, limit: int = 1024) -> str:
    """The first ``limit`` bytes of an answer's body as text: a push service's reason."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass  # the reason is a courtesy; the status says what matters
    return data[:limit].decode("utf-8", "replace")


def _combined(user: str, failures: list[DeliveryError], prefix: str = "") -> DeliveryError:
    """One error for the browsers that did not take a notification: temporary if any
    failure was."""
    temporary = [f for f in failures if isinstance(f, TemporaryDeliveryError)]
    text = prefix + "; ".join(str(f) for f in failures)
    error: DeliveryError
    if temporary:
        busy = TemporaryDeliveryError(text)
        waits = [f.retry_after for f in temporary if f.retry_after is not None]
        busy.retry_after = max(waits) if waits else None
        busy.__cause__ = temporary[0].__cause__ or temporary[0]
        error = busy
    else:
        error = PermanentDeliveryError(text)
        error.__cause__ = failures[0].__cause__ or failures[0]
    return error
