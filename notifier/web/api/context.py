"""What every route of the API needs, made once by the service: :class:`ApiContext`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ...config import Config, parse_duration
from ...errors import DeliveryError, DirectoryError
from ...notification import Notification
from ...storage import Store
from ...storage.credentials import Credentials, NotInMemory, new_secret
from ...storage.rulecounts import sent_by_rule
from .problems import Problem
from .ratelimit import RateLimiter


class Mailer:
    """Sends one mail at a time through the configured email backend (SMTP or Maildir).

    For the service's own mail to a person: sign-in links and address
    confirmations. ``backend`` is made on first use.
    """

    def __init__(self, config: Config, backend: Callable[[Config], Any] | None = None):
        self.config = config
        self._make = backend
        self._backend: Any = None
        self._lock = threading.Lock()

    def __call__(self, address: str, subject: str, text: str, *, user: str = "") -> None:
        """Send it now; :class:`Problem` 503 when the mail cannot go out."""
        notification = Notification(
            user=user or address, destination="email", address=address,
            msg_id=new_secret("notifier-"), topic="notifier.account", app="notifier",
            content={"subject": subject, "text": text}, timestamp=time.time())
        with self._lock:
            try:
                if self._backend is None:
                    if self._make is None:
                        from ...backends.email import EmailBackend

                        self._make = EmailBackend
                    self._backend = self._make(self.config)
                    self._backend.setup()
                self._backend.send(notification)
            except DeliveryError as exc:
                self._backend = None
                raise Problem(503, "Mail could not be sent", str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None


@dataclass
class ApiContext:
    """The store, the credentials and the limits the API's routes use."""

    config: Config
    store: Store
    credentials: Credentials
    #: signs session cookies and CSRF tokens
    key: bytes
    mail: Callable[..., None]
    #: the user ``name`` as the directory knows them (FASJSON), or None
    directory: Callable[[str], dict[str, Any] | None] = lambda name: None
    #: ``(user, since)``: rule name to how many notifications it sent since then
    rule_counts: Callable[[str, float], dict[str, int]] = lambda user, since: {}
    #: called after a route changed rules or users: the running service applies the change
    #: log now
    changed: Callable[[], object] = lambda: None
    #: the local user ``name`` as delivery sees it (in the service: from memory, kept
    #: current by the change log); None: read from the store
    users: Callable[[str], dict[str, Any] | None] | None = None
    #: the record ``users`` holds in memory for ``name``, without reading anything
    peek_user: Callable[[str], dict[str, Any] | None] | None = None
    user_limit: RateLimiter = field(default_factory=lambda: RateLimiter(600))
    address_limit: RateLimiter = field(default_factory=lambda: RateLimiter(1200))
    clock: Callable[[], float] = time.time

    @classmethod
    def build(cls, config: Config, store: Store, *, mail: Callable[..., None] | None = None,
              directory: Callable[[str], dict[str, Any] | None] | None = None,
              users: Callable[[str], dict[str, Any] | None] | None = None,
              peek_user: Callable[[str], dict[str, Any] | None] | None = None) -> ApiContext:
        credentials = Credentials(store)
        return cls(config=config, store=store, credentials=credentials,
                   key=credentials.signing_key(config.web.secret_key),
                   mail=mail or Mailer(config),
                   directory=directory or (lambda name: None), users=users,
                   peek_user=peek_user,
                   rule_counts=lambda user, since: sent_by_rule(store, user, since),
                   user_limit=RateLimiter(config.web.user_rate),
                   address_limit=RateLimiter(config.web.address_rate))

    @property
    def session_ttl(self) -> int:
        return parse_duration(self.config.web.session_ttl)

    @property
    def secure_cookies(self) -> bool:
        return self.config.http.public_url().startswith("https://")

    def enrol(self, name: str, *, emails: list[str] | None = None,
              groups: list[str] | None = None) -> dict[str, Any]:
        """The user ``name``, created on first sign-in; claims refresh emails and groups.

        With FASJSON configured, its profile fills what the claims leave out.
        """
        record: dict[str, Any] = {"name": name}
        try:
            profile = self.directory(name) or {}
        except DirectoryError:
            profile = {}
        for key, claimed in (("emails", emails), ("groups", groups)):
            value = claimed if claimed else profile.get(key)
            if value:
                record[key] = list(value)
        if profile.get("ircnicks"):
            record["ircnicks"] = list(profile["ircnicks"])
        self.store.import_users([record], source="sign-in")
        self.changed()
        user = self.store.get_user(name)
        assert user is not None
        return user

    def user(self, name: str, *, memory_only: bool = False) -> dict[str, Any] | None:
        """The local user ``name``'s record, or None.

        With ``memory_only``, :class:`NotInMemory` unless the service holds it in memory.
        """
        if memory_only:
            user = self.peek_user(name) if self.peek_user is not None else None
            if user is None:
                raise NotInMemory(name)
            return user
        if self.users is not None:
            return self.users(name)
        return self.store.get_user(name)


def api_of(request: Request) -> ApiContext:
    """The :class:`ApiContext` of the application serving ``request``."""
    return request.app.state.api  # type: ignore[no-any-return]


async def context(request: Request) -> ApiContext:
    """The route dependency that gives the :class:`ApiContext`.

    ``async``, as every dependency that neither waits nor reads the database:
    FastAPI runs a plain function in its thread pool, one hand-over per
    dependency per request.
    """
    return api_of(request)
