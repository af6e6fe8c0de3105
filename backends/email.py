"""Email: over SMTP, or into a local Maildir when no SMTP server is configured.

With ``[email] smtp_host`` set, mail goes to that server (``ssl`` for
implicit TLS, ``starttls`` to upgrade a plain connection, ``username`` and
``password`` for AUTH). One connection is kept open and reused for every
message; when the server has closed it in the meantime (an idle timeout, a
restart) the backend notices at ``MAIL FROM``, before any data was sent, and
retries once on a fresh connection. A connection idle for longer than
:data:`IDLE_CHECK` seconds is checked with ``NOOP`` first.

Without ``smtp_host``, every message is added to the Maildir at
``[email] maildir`` (default ``<data dir>/Maildir``), created on first use.
This is the embedded default: a local mail reader shows the notifications
with no mail server at all.

How failures are classified:

* a 5xx reply to ``MAIL FROM``, ``RCPT TO`` or ``DATA`` (the server refused
  this message) is a :class:`~notifier.errors.PermanentDeliveryError`;
* a 4xx reply, a refused or lost connection, a timeout, a TLS or AUTH
  failure (problems of the server or of our settings, not of this message,
  and fixed without touching the message) is a
  :class:`~notifier.errors.TemporaryDeliveryError`;
* a Maildir that cannot be written is a
  :class:`~notifier.errors.TemporaryDeliveryError`;
* a notification that cannot become a valid message (missing ``subject``
  or ``text``, a header with a line break or an invalid name, a rendered
  ``Content-*`` or ``MIME-Version`` header, which only the backend sets) is a
  :class:`~notifier.errors.PermanentDeliveryError`.

Every message names the SMTP server (or the Maildir) and the recipient.

``close()`` says QUIT; a later ``send()`` opens a new connection, so one
backend object can be closed when idle and used again. A backend object is
meant for one thread.
"""

from __future__ import annotations

import binascii
import email.errors
import hashlib
import mailbox
import os
import random
import re
import smtplib
import ssl
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import NoReturn

from ..config import Config, EmailConfig, data_dir
from ..errors import ConfigError, PermanentDeliveryError, TemporaryDeliveryError
from ..notification import Notification
from .base import Backend
from .mailheaders import header_line

#: seconds a kept connection may sit idle before it is checked with NOOP
IDLE_CHECK = 30.0

#: header names the backend sets itself; ``notification.headers`` may override them
_OWN_HEADERS = ("From", "To", "Subject", "Date")


class EmailBackend(Backend):
    """Sends each notification as a multipart text and HTML mail."""

    name = "email"
    max_length = None
    single_line = False
    markup = "html"

    def __init__(self, config: Config):
        super().__init__(config)
        settings = config.email
        self._transport: SmtpTransport | MaildirTransport
        if settings.smtp_host:
            self._transport = SmtpTransport(settings, _source(config))
        else:
            self._transport = MaildirTransport(
                Path(settings.maildir) if settings.maildir else data_dir() / "Maildir")

    @property
    def where(self) -> str:
        """The SMTP server as ``host:port``, or the Maildir path."""
        return self._transport.where

    def setup(self) -> None:
        """Check the settings; create the Maildir. SMTP connects at the first send."""
        self._transport.setup()

    def send(self, notification: Notification) -> None:
        """Deliver one notification to ``notification.address``."""
        message = build_message(notification, self.config.email, where=self.where)
        self._transport.deliver(message, self.config.email.from_address, notification.address)

    def close(self) -> None:
        """Close the SMTP connection, if one is open. Safe to call more than once."""
        self._transport.close()


def build_message(notification: Notification, settings: EmailConfig,
                  where: str = "email") -> Mail:
    """The mail for ``notification``: text and, when rendered, HTML alternatives.

    ``From`` is ``settings.from_address``, ``To`` the notification's address,
    ``Subject`` its ``subject`` content and ``Date`` its timestamp (now when it
    has none). The rendered ``headers`` follow and replace any of these. A
    ``Message-ID`` derived from the notification's key is added when the
    headers have none, so a retried mail keeps its id; ``List-Id`` falls
    back to ``settings.list_id``. Both bodies are UTF-8 in quoted-printable.
    """
    content = notification.content
    for key in ("subject", "text"):
        if not isinstance(content.get(key), str):
            raise PermanentDeliveryError(
                f"{where}: email for {notification.address} (message {notification.msg_id}) "
                f"has no rendered '{key}'")
    when = datetime.fromtimestamp(notification.timestamp or time.time(), UTC)
    try:
        headers = _Headers()
        headers.set("From", settings.from_address)
        headers.set("To", notification.address)
        headers.set("Subject", content["subject"])
        headers.set("Date", format_datetime(when))
        for name, value in notification.headers.items():
            if name.lower() in _MIME_HEADERS:
                raise ValueError(f"header {name!r} is set by the email backend itself")
            headers.set(name, value)
        if "message-id" not in headers:
            digest = hashlib.sha256(notification.key.encode()).hexdigest()[:32]
            domain = settings.from_address.rpartition("@")[2] or "localhost"
            headers.set("Message-ID", f"<{digest}@{domain}>")
        if "list-id" not in headers:
            headers.set("List-Id", f"<{settings.list_id}>")
        text = _quoted_printable(content["text"])
        html = content.get("html")
        html_body = _quoted_printable(html) if isinstance(html, str) and html else None
    except (ValueError, TypeError) as exc:
        raise PermanentDeliveryError(
            f"{where}: cannot build the email for {notification.address} "
            f"(message {notification.msg_id}): {exc}") from exc
    return Mail(headers.items, text, html_body, _boundary())


class Mail:
    """A built mail: its headers in order, and its parts already quoted-printable.

    The headers are kept as given; they are encoded (RFC 2047 encoded words,
    or raw UTF-8 for an SMTPUTF8 transaction) only by :meth:`as_bytes`,
    because that depends on the addresses of the transaction.
    """

    __slots__ = ("headers", "text", "html", "boundary")

    def __init__(self, headers: tuple[tuple[str, str], ...], text: bytes, html: bytes | None,
                 boundary: str):
        #: ``(name, value)`` pairs, in the order they are written
        self.headers = headers
        #: the plain-text part, quoted-printable UTF-8 with LF line ends
        self.text = text
        #: the HTML part, like ``text``; None for a text-only mail
        self.html = html
        #: the multipart boundary, which quoted-printable data cannot contain
        self.boundary = boundary

    def __contains__(self, name: str) -> bool:
        lowered = name.lower()
        return any(have.lower() == lowered for have, _ in self.headers)

    def __getitem__(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None, as in ``email.message``."""
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str] | None:
        """Every value of header ``name`` (any case), or None when there is none."""
        lowered = name.lower()
        values = [value for have, value in self.headers if have.lower() == lowered]
        return values or None

    def as_bytes(self, *, smtp: bool = False, international: bool = False) -> bytes:
        """The mail on the wire: CRLF line ends for SMTP, LF for a Maildir.

        With ``international`` (an SMTPUTF8 transaction) non-ASCII header
        values go out as raw UTF-8, otherwise as encoded words. Raises
        ValueError, TypeError or :class:`email.errors.MessageError` for a
        header value the email package cannot encode.
        """
        out = [header_line(name, value, international) for name, value in self.headers]
        if self.html is None:
            out.append(_TEXT_PART_HEADERS + b"MIME-Version: 1.0\n\n")
            out.append(self.text)
        else:
            delimiter = b"\n--" + self.boundary.encode("ascii")
            out.append(b"MIME-Version: 1.0\nContent-Type: multipart/alternative; "
                       b'boundary="' + self.boundary.encode("ascii") + b'"\n')
            out += (delimiter, b"\n", _TEXT_PART_HEADERS, b"\n", self.text,
                    delimiter, b"\n", _HTML_PART_HEADERS, b"\n", self.html,
                    delimiter, b"--\n")
        data = b"".join(out)
        return data.replace(b"\n", b"\r\n") if smtp else data


#: headers the MIME structure needs; the backend writes them, rendered headers may not
_MIME_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding",
                           "content-disposition", "content-id", "content-description"})
_TEXT_PART_HEADERS = (b'Content-Type: text/plain; charset="utf-8"\n'
                      b"Content-Transfer-Encoding: quoted-printable\n")
_HTML_PART_HEADERS = (b'Content-Type: text/html; charset="utf-8"\n'
                      b"Content-Transfer-Encoding: quoted-printable\n")

#: what str.splitlines() breaks at; none of these may appear in a header value
_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
#: RFC 5322 field name: printable ASCII but the colon
_FIELD_NAME = re.compile(r"[!-9;-~]+")


class _Headers:
    """Header lines in order, where setting a name replaces (and moves) any earlier one."""

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[str, str]] = {}

    def __contains__(self, lowered: str) -> bool:
        return lowered in self._by_name

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._by_name.values())

    def set(self, name: str, value: str) -> None:
        """Add ``name`` last, dropping an earlier one; refuse what could start a header."""
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if not isinstance(value, str):
            raise TypeError(f"header {name!r} is not text: {value!r}")
        if _LINE_BREAK.search(value):
            raise ValueError(f"header {name!r} contains a line break: {value!r}")
        lowered = name.lower()
        self._by_name.pop(lowered, None)
        self._by_name[lowered] = (name, value)


def _quoted_printable(text: str) -> bytes:
    """``text`` as UTF-8 in quoted-printable, with LF line ends and a final one.

    Line ends are normalised as the email package does for text content;
    long lines get soft breaks, so no line passes 76 characters.
    """
    return binascii.b2a_qp(b"\n".join(text.encode("utf-8").splitlines()) + b"\n")


def _boundary() -> str:
    # "=_" never occurs in quoted-printable data ("=" is followed by two hex digits or a
    # line end there), so this boundary cannot clash with either body, and need not be
    # unguessable: random's generator spares a system call per mail.
    return f"=_{random.getrandbits(96):024x}"


def _source(config: Config) -> str:
    return config.sources[-1] if config.sources else "the configuration"


def _international(*addresses: str) -> bool:
    return not all(address.isascii() for address in addresses)


def _as_bytes(message: Mail, *, smtp: bool, international: bool) -> bytes:
    """The message as bytes: CRLF lines for SMTP, LF for a Maildir; raw UTF-8 when needed."""
    return message.as_bytes(smtp=smtp, international=international)


class _Stale(Exception):
    """The kept connection turned out to be closed before any data was sent."""


class SmtpTransport:
    """One SMTP connection, opened on demand and kept for the next message."""

    def __init__(self, settings: EmailConfig, source: str):
        self.settings = settings
        self.source = source
        self.where = f"SMTP server {settings.smtp_host}:{settings.smtp_port}"
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0

    def setup(self) -> None:
        if self.settings.ssl and self.settings.starttls:
            raise ConfigError(f"{self.source}: [email] 'ssl' and 'starttls' are both true; "
                              "use ssl for implicit TLS (port 465) or starttls (port 587)")
        if self.settings.password and not self.settings.username:
            raise ConfigError(f"{self.source}: [email] 'password' is set but 'username' is not")

    def deliver(self, message: Mail, sender: str, recipient: str) -> None:
        international = _international(sender, recipient)
        try:
            data = _as_bytes(message, smtp=True, international=international)
        except (ValueError, TypeError, email.errors.MessageError) as exc:
            raise PermanentDeliveryError(
                f"{self.where}: cannot encode the email for {recipient}: {exc}") from exc
        options = ("SMTPUTF8", "BODY=8BITMIME") if international else ()
        for attempt in (1, 2):
            conn, fresh = self._ready(recipient)
            try:
                self._transaction(conn, sender, recipient, data, options)
            except _Stale as exc:
                self._drop()
                if fresh or attempt == 2:
                    raise TemporaryDeliveryError(
                        f"{self.where} closed the connection before accepting the email "
                        f"for {recipient}: {exc}") from exc
                continue
            self._last_used = time.monotonic()
            return

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            # The server is gone already; there is nothing left to release but the socket.
            conn.close()

    def _ready(self, recipient: str) -> tuple[smtplib.SMTP, bool]:
        """The kept connection, checked with NOOP when idle for long, or a new one."""
        if self._conn is not None and time.monotonic() - self._last_used > IDLE_CHECK:
            try:
                alive = self._conn.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop()
        if self._conn is not None:
            return self._conn, False
        self._conn = self._connect(recipient)
        self._last_used = time.monotonic()
        return self._conn, True

    def _connect(self, recipient: str) -> smtplib.SMTP:
        settings = self.settings
        host, port, timeout = settings.smtp_host or "", settings.smtp_port, settings.timeout
        doing = "connecting"
        try:
            if settings.ssl:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(host, port, timeout=timeout)
        except (smtplib.SMTPException, OSError) as exc:
            self._fail(doing, recipient, exc)
        try:
            doing = "saying EHLO"
            conn.ehlo_or_helo_if_needed()
            if settings.starttls:
                doing = "starting TLS"
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if settings.username:
                doing = f"logging in as {settings.username}"
                conn.login(settings.username, settings.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            conn.close()
            self._fail(doing, recipient, exc)
        return conn

    def _fail(self, doing: str, recipient: str, exc: BaseException) -> NoReturn:
        if isinstance(exc, smtplib.SMTPResponseException):
            detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        else:
            detail = str(exc) or type(exc).__name__
        raise TemporaryDeliveryError(
            f"{self.where}: failed {doing} to send the email for {recipient}: {detail}") from exc

    def _transaction(self, conn: smtplib.SMTP, sender: str, recipient: str, data: bytes,
                     options: tuple[str, ...]) -> None:
        try:
            code, reply = conn.mail(sender, options)
        except smtplib.SMTPServerDisconnected as exc:
            raise _Stale(str(exc)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(
                f"{self.where} does not support SMTPUTF8, needed for {recipient}") from exc
        if code == 421:
            # The server said goodbye (idle timeout) and is closing: nothing was sent yet.
            raise _Stale(f"{code} {_text(reply)}")
        try:
            if code != 250:
                self._refused("MAIL FROM", sender, recipient, code, reply)
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                self._refused("RCPT TO", recipient, recipient, code, reply)
            code, reply = conn.data(data)
            if code != 250:
                self._refused("the message", recipient, recipient, code, reply)
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise TemporaryDeliveryError(
                f"{self.where} closed the connection while sending the email for "
                f"{recipient}: {exc}") from exc
        except smtplib.SMTPResponseException as exc:  # DATA answered with something but 354
            self._reset()
            raise _reply_error(self.where, "DATA", recipient, exc.smtp_code,
                               exc.smtp_error) from exc

    def _refused(self, what: str, who: str, recipient: str, code: int,
                 reply: bytes | str) -> NoReturn:
        self._reset()
        error = _reply_error(self.where, what, recipient, code, reply, who)
        raise error from smtplib.SMTPResponseException(code, reply)

    def _reset(self) -> None:
        """RSET after a refused transaction, dropping the connection if that fails too."""
        if self._conn is None:
            return
        try:
            if self._conn.rset()[0] == 250:
                return
        except (smtplib.SMTPException, OSError):
            pass
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _reply_error(where: str, what: str, recipient: str, code: int, reply: bytes | str,
                 who: str | None = None) -> TemporaryDeliveryError | PermanentDeliveryError:
    subject = f"{what} {who}" if who and who != recipient else what
    text = (f"{where} refused {subject} for the email to {recipient}: "
            f"{code} {_text(reply)}")
    if 500 <= code <= 599:
        return PermanentDeliveryError(text)
    return TemporaryDeliveryError(text)


class MaildirTransport:
    """Adds each message to one local Maildir."""

    def __init__(self, path: Path):
        self.path = path
        self.where = f"Maildir {path}"
        self._box: mailbox.Maildir | None = None

    def setup(self) -> None:
        self._open("")

    def deliver(self, message: Mail, sender: str, recipient: str) -> None:
        try:
            data = _as_bytes(message, smtp=False, international=_international(recipient))
        except (ValueError, TypeError, email.errors.MessageError) as exc:
            raise PermanentDeliveryError(
                f"{self.where}: cannot encode the email for {recipient}: {exc}") from exc
        box = self._open(recipient)
        try:
            key = box.add(data)
            _sync(self.path / "new" / key)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"{self.where}: cannot store the email for {recipient}: "
                f"{exc.strerror or exc}") from exc

    def close(self) -> None:
        self._box = None

    def _open(self, recipient: str) -> mailbox.Maildir:
        if self._box is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._box = mailbox.Maildir(self.path, factory=None, create=True)
            except OSError as exc:
                whom = f" for {recipient}" if recipient else ""
                raise TemporaryDeliveryError(
                    f"{self.where}: cannot create the Maildir{whom}: "
                    f"{exc.strerror or exc}") from exc
        return self._box


def _sync(path: Path) -> None:
    """Flush a delivered file and its directory entry to disk, as MDAs do."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
