"""Every error notifier raises on purpose derives from :class:`NotifierError`.

The tree::

    NotifierError
    ├── ConfigError            a config file is unreadable, has an unknown key or a wrong type
    ├── InputError             bad input on the command line or in a file (names where)
    ├── BusError
    │   ├── PublishError       a message could not be handed to the bus
    │   │   └── NoRelayError   nobody subscribed within the timeout (names the address)
    │   ├── TransportError     the transport failed (bad address, socket error)
    │   └── BadMessageError    a received message failed a check; ``reason`` says which
    ├── SignatureError         signing failed, or a signature, chain or CRL did not validate
    ├── StorageError           the database could not be opened, migrated or written
    │   └── StorageUnavailableError  not the data's fault: the database is down,
    │                                disconnected, locked, read-only, full or not migrated
    ├── DirectoryError         the user directory (FASJSON) could not be asked
    ├── SignInError            a sign-in could not be completed: refused by the person or
    │   │                      the identity provider, a stale or foreign state, a token
    │   │                      that did not validate, a missing claim
    │   └── ProviderError      the identity provider could not be reached, or answered
    │                          something that is not OpenID Connect
    ├── RuleError              a rule is invalid (names the file, the rule and the field)
    ├── ServiceError           a part of notifier serve failed (a child process exited), or
    │   │                      another notifier serve holds the SQLite database
    │   └── HttpError          the HTTP server stopped without being asked to
    └── DeliveryError          a backend could not deliver a notification
        ├── TemporaryDeliveryError   worth retrying later
        └── PermanentDeliveryError   retrying will not help (unknown nick, SMTP 5xx)

Library errors are translated where they enter the project, with
``raise ... from exc``, so the original cause stays attached.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Root of every error notifier raises on purpose."""


class ConfigError(NotifierError):
    """A configuration file is unreadable or invalid."""


class InputError(NotifierError):
    """Input given on the command line or in a file is invalid."""


class BusError(NotifierError):
    """Something went wrong on the message bus."""


class PublishError(BusError):
    """A message could not be handed to the bus."""


class NoRelayError(PublishError):
    """Nobody subscribed to our publisher within the timeout."""


class TransportError(BusError):
    """The transport failed: a bad address or a socket error."""


class BadMessageError(BusError, ValueError):
    """A message received from the bus failed a check and is rejected.

    ``reason`` is a short word for metrics and the store of rejected messages
    (see :data:`notifier.bus.checks.REASONS`); ``detail`` says what was found.
    It is also a ``ValueError``, which is what decoding raised before.
    """

    def __init__(self, reason: str, detail: str, msg_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.msg_id = msg_id


class SignatureError(NotifierError):
    """Signing failed, or a message did not validate."""


class StorageError(NotifierError):
    """The database could not be opened, migrated or written."""


class StorageUnavailableError(StorageError):
    """The database cannot be used now, for reasons that are not in the data written.

    Worth retrying: a connection lost or refused, a lock held too long, a
    read-only or full disk, a schema not migrated. Data that the database
    refuses (a constraint, a value it cannot hold) is a plain
    :class:`StorageError`.
    """


class DirectoryError(NotifierError):
    """The user directory (FASJSON) could not be asked."""


class SignInError(NotifierError):
    """A sign-in could not be completed; ``status`` is the HTTP status that says why."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class ProviderError(SignInError):
    """The identity provider could not be reached, or gave an answer that makes no sense."""

    status = 502


class RuleError(NotifierError):
    """A rule is invalid."""


class ServiceError(NotifierError):
    """A part of ``notifier serve`` failed, or the service cannot run (the database is held)."""


class HttpError(ServiceError):
    """The HTTP server stopped without being asked to."""


class DeliveryError(NotifierError):
    """A backend could not deliver a notification."""


class TemporaryDeliveryError(DeliveryError):
    """Delivery failed in a way that may succeed later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed in a way that retrying will not fix."""
