"""Receiving ends for the email backend: an aiosmtpd server and a Maildir."""

from __future__ import annotations

import email.policy
import mailbox
import re
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import free_port, poll

from .contract import BasePeer, Delivered

FROM = "notifier@example.org"


@dataclass
class Received:
    """One message as the SMTP server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    #: the SMTP session it came in, to tell connections apart
    session: Session = field(repr=False)
    #: time.monotonic() when it was accepted
    at: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> EmailMessage:
        """The message parsed, with the CRLF line ends of SMTP turned into newlines."""
        parsed = message_from_bytes(self.data.replace(b"\r\n", b"\n"),
                                    policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class RecordingHandler:
    """An aiosmtpd handler that keeps every message and can refuse chosen recipients.

    ``refuse`` maps a recipient to the reply its ``RCPT TO`` gets (e.g.
    ``"550 5.1.1 no such user"``); ``refuse_data`` maps a recipient to the reply
    the end of its ``DATA`` gets.
    """

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.refuse_data: dict[str, str] = {}
        self.noops = 0
        self.logins: list[str] = []
        self.changed = threading.Condition()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_NOOP(self, server: SMTP, session: Session, envelope: Envelope,
                          arg: str) -> str:
        self.noops += 1
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.refuse_data:
                return self.refuse_data[rcpt]
        assert isinstance(envelope.content, bytes) and envelope.mail_from is not None
        with self.changed:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.content, session))
            self.changed.notify_all()
        return "250 Message accepted for delivery"

    def sessions(self) -> int:
        """How many distinct SMTP connections delivered messages."""
        return len({id(m.session) for m in self.messages})


def delivered_text(message: EmailMessage) -> str:
    """What a reader sees: the subject, then the plain text body."""
    body = message.get_body(("plain",))
    assert body is not None, "no text/plain part"
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return f"{message['Subject']}\n{text}"


class SmtpPeer(BasePeer):
    """An aiosmtpd server on a free loopback port, recording what it accepts.

    ``nobody@example.org`` is refused with 550. ``server_options`` go to
    aiosmtpd's ``SMTP`` (``timeout``, ``tls_context``, ``authenticator``, ...).
    """

    name: ClassVar[str] = "email"
    id: ClassVar[str] = "email-smtp"
    stoppable: ClassVar[bool] = True

    def __init__(self, tmp_path: Path, **server_options: Any):
        super().__init__(tmp_path)
        self.handler = RecordingHandler()
        self.handler.refuse["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
        self.server_options = server_options
        self.port = free_port()
        self._controller: Controller | None = None
        self._returned = 0

    def start(self) -> None:
        """Start listening (again, on the same port after :meth:`stop`)."""
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                      **self.server_options)
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def config(self) -> dict[str, Any]:
        return {"email": {"smtp_host": "127.0.0.1", "smtp_port": self.port,
                          "from_address": FROM, "timeout": 5.0}}

    def address(self, user: str) -> str:
        return f"{user}@example.org"

    def reject_address(self) -> str | None:
        return "nobody@example.org"

    def received(self, timeout: float) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        with self.handler.changed:
            while len(self.handler.messages) <= self._returned:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.handler.changed.wait(left)
            new = self.handler.messages[self._returned:]
            self._returned = len(self.handler.messages)
        return [Delivered(rcpt, delivered_text(m.message), m) for m in new for rcpt in m.rcpt_tos]


_KEY = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.")


def _delivery_order(key: str) -> tuple[int, ...]:
    # mailbox.Maildir names files "<seconds>.M<microseconds>P<pid>Q<counter>.<host>".
    match = _KEY.match(key)
    assert match, f"unexpected Maildir file name {key!r}"
    seconds, micros, pid, counter = (int(g) for g in match.groups())
    return seconds, micros, counter, pid


class MaildirPeer(BasePeer):
    """A Maildir in the test's directory, read as a mail reader would."""

    name: ClassVar[str] = "email"
    id: ClassVar[str] = "email-maildir"

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.path = tmp_path / "Mail" / "notifications"
        self._seen: set[str] = set()

    def config(self) -> dict[str, Any]:
        return {"email": {"maildir": str(self.path), "from_address": FROM}}

    def address(self, user: str) -> str:
        return f"{user}@example.org"

    def received(self, timeout: float) -> list[Delivered]:
        new = poll(self._new_keys, timeout)
        out = []
        box = mailbox.Maildir(self.path, factory=None, create=False)
        for key in new:
            with box.get_file(key) as fh:
                data = fh.read()
            self._seen.add(key)
            message = message_from_bytes(data, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            out.append(Delivered(str(message["To"]), delivered_text(message), message))
        return out

    def _new_keys(self) -> list[str]:
        if not (self.path / "new").is_dir():
            return []
        keys = [p.name for p in (self.path / "new").iterdir() if p.name not in self._seen]
        return sorted(keys, key=_delivery_order)
