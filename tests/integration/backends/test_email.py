"""The email backend against a real SMTP server (aiosmtpd on loopback) and a real Maildir.

The shared behaviour is in contract.py; these tests cover what only email
has: connection reuse, reconnects, TLS and AUTH, reply codes, the Maildir
default.
"""

from __future__ import annotations

import email.policy
import mailbox
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifier.backends import email as email_backend
from notifier.backends.email import EmailBackend
from notifier.config import config_from_dict
from notifier.errors import PermanentDeliveryError, TemporaryDeliveryError
from notifier.notification import Notification
from tests.conftest import free_port, wait_for
from tests.integration.certs import server_tls
from tests.integration.conftest import established_connections

from .contract import notification
from .peers_email import MaildirPeer, SmtpPeer


def backend_for(tmp_path: Path, email: dict[str, Any]) -> EmailBackend:
    config = config_from_dict({"email": {"from_address": "notifier@example.org",
                                         "timeout": 5.0, **email}},
                              str(tmp_path / "notifier.toml"))
    backend = EmailBackend(config)
    backend.setup()
    return backend


# -- connections -----------------------------------------------------------------

def test_one_connection_carries_many_messages(smtp: SmtpPeer, tmp_path: Path) -> None:
    backend = EmailBackend(config_from_dict(smtp.config()))
    backend.setup()
    for i in range(5):
        backend.send(notification(smtp, summary=f"message {i}"))
    assert len(smtp.handler.messages) == 5
    assert smtp.handler.sessions() == 1
    assert established_connections(smtp.port) == 1
    backend.close()
    wait_for(lambda: established_connections(smtp.port) == 0, "the connection to close")


def test_reconnects_when_the_server_closed_an_idle_connection(tmp_path: Path) -> None:
    peer = SmtpPeer(tmp_path, timeout=0.3)  # aiosmtpd drops clients idle for 0.3 s
    peer.start()
    try:
        backend = EmailBackend(config_from_dict(peer.config()))
        backend.send(notification(peer, summary="first"))
        wait_for(lambda: established_connections(peer.port) == 0,
                   "the server to drop the idle connection")
        backend.send(notification(peer, summary="second"))
        backend.close()
    finally:
        peer.stop()
    assert [m.message["Subject"] for m in peer.handler.messages] == ["first", "second"]
    assert peer.handler.sessions() == 2


def test_reconnects_after_a_server_restart(smtp: SmtpPeer) -> None:
    backend = EmailBackend(config_from_dict(smtp.config()))
    backend.send(notification(smtp, summary="before restart"))
    smtp.stop()
    smtp.start()
    backend.send(notification(smtp, summary="after restart"))
    backend.close()
    assert [m.message["Subject"] for m in smtp.handler.messages] == \
        ["before restart", "after restart"]
    assert smtp.handler.sessions() == 2


def test_idle_connection_is_checked_with_noop(smtp: SmtpPeer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(email_backend, "IDLE_CHECK", 0.0)
    backend = EmailBackend(config_from_dict(smtp.config()))
    backend.send(notification(smtp, summary="one"))
    backend.send(notification(smtp, summary="two"))
    backend.close()
    assert smtp.handler.noops == 1
    assert smtp.handler.sessions() == 1


# -- what arrives ------------------------------------------------------------------

def test_the_mail_on_the_wire(smtp: SmtpPeer) -> None:
    headers = {"Message-ID": "<2025-1.alice@notifier.example.org>",
               "List-Unsubscribe": "<https://notifier.example.org/u/tok>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
               "X-Notifier-Rule": "my builds", "X-Notifier-App": "koji"}
    sent = Notification(
        user="alice", destination="email", address="alice@example.org", msg_id="2025-1",
        topic="org.fedoraproject.prod.buildsys.build.state.change", app="koji",
        content={"subject": "Zoë’s build ✓", "text": "line one\n.\n..two dots\n",
                 "html": "<p>built ✓</p>"},
        headers=headers, timestamp=1_700_000_000.0)
    backend = EmailBackend(config_from_dict(smtp.config()))
    backend.send(sent)
    backend.close()
    (got,) = smtp.handler.messages
    assert got.mail_from == "notifier@example.org"
    assert got.rcpt_tos == ["alice@example.org"]
    message = got.message
    assert message["Subject"] == "Zoë’s build ✓"
    assert message["To"] == "alice@example.org"
    for name, value in headers.items():
        assert message[name] == value
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert text.get_content() == "line one\n.\n..two dots\n"
    assert html.get_content().strip() == "<p>built ✓</p>"


def test_long_and_lookalike_subjects_as_a_mail_reader_sees_them(smtp: SmtpPeer) -> None:
    lookalike = "=?UTF-8?B?ZXZpbA==?="
    subjects = [f"[bodhi] {lookalike} für Zoë ✓ " + "Ünïcode wörds " * 16,
                "[koji] " + "漢字のテスト " * 36]
    backend = EmailBackend(config_from_dict(smtp.config()))
    for i, subject in enumerate(subjects):
        backend.send(Notification(
            user="alice", destination="email", address="alice@example.org", msg_id=f"m{i}",
            topic="t", app="bodhi", content={"subject": subject, "text": "t\n"},
            timestamp=1_700_000_000.0))
    backend.close()
    assert len(smtp.handler.messages) == 2
    for got, subject in zip(smtp.handler.messages, subjects, strict=True):
        head = got.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        start = next(i for i, line in enumerate(head) if line.startswith(b"Subject:"))
        end = next(i for i in range(start + 1, len(head)) if head[i][:1] != b" ")
        assert end - start > 2  # folded, not one long line
        assert all(len(line) <= 78 for line in head[start:end])
        words = re.findall(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", b"".join(head[start:end]))
        assert words and all(len(word) <= 75 for word in words)
        assert got.message["Subject"] == subject  # the lookalike is shown as written


def test_international_recipient_uses_smtputf8(smtp: SmtpPeer) -> None:
    backend = EmailBackend(config_from_dict(smtp.config()))
    backend.send(notification(smtp, address="zoë@example.org", summary="für Zoë"))
    backend.close()
    (got,) = smtp.handler.messages
    assert got.rcpt_tos == ["zoë@example.org"]
    assert got.message["To"] == "zoë@example.org"


# -- failures ------------------------------------------------------------------------

def test_4xx_reply_is_temporary_and_the_connection_stays_usable(smtp: SmtpPeer) -> None:
    smtp.handler.refuse["busy@example.org"] = "451 4.3.0 mailbox busy, try later"
    backend = EmailBackend(config_from_dict(smtp.config()))
    with pytest.raises(TemporaryDeliveryError) as info:
        backend.send(notification(smtp, address="busy@example.org"))
    message = str(info.value)
    assert f"127.0.0.1:{smtp.port}" in message
    assert "busy@example.org" in message and "451" in message
    backend.send(notification(smtp, summary="next one"))
    backend.close()
    assert [m.message["Subject"] for m in smtp.handler.messages] == ["next one"]
    assert smtp.handler.sessions() == 1


def test_5xx_after_data_is_permanent(smtp: SmtpPeer) -> None:
    smtp.handler.refuse_data["spam@example.org"] = "554 5.7.1 looks like spam"
    backend = EmailBackend(config_from_dict(smtp.config()))
    with pytest.raises(PermanentDeliveryError, match="spam@example.org.*554") as info:
        backend.send(notification(smtp, address="spam@example.org"))
    backend.close()
    assert isinstance(info.value.__cause__, smtplib.SMTPResponseException)
    assert info.value.__cause__.smtp_code == 554


def test_nothing_listening_is_temporary(tmp_path: Path) -> None:
    port = free_port()
    backend = backend_for(tmp_path, {"smtp_host": "127.0.0.1", "smtp_port": port})
    with pytest.raises(TemporaryDeliveryError) as info:
        backend.send(notification(MaildirPeer(tmp_path), address="alice@example.org"))
    assert f"SMTP server 127.0.0.1:{port}" in str(info.value)
    assert "alice@example.org" in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        backend = backend_for(tmp_path, {"smtp_host": "127.0.0.1", "smtp_port": port,
                                         "timeout": 0.3})
        started = time.monotonic()
        with pytest.raises(TemporaryDeliveryError, match="alice@example.org.*timed out"):
            backend.send(notification(MaildirPeer(tmp_path), address="alice@example.org"))
        assert time.monotonic() - started < 3


# -- TLS and AUTH --------------------------------------------------------------------

def _server_tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    return server_tls(tmp_path, "Notifier Test Mail CA")


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and \
        (auth_data.login, auth_data.password) == (b"notifier", b"s3cret")
    # handled=False: aiosmtpd answers 535 itself on failure
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpPeer]:
    """STARTTLS required, then AUTH required; clients trust the test CA (SSL_CERT_FILE)."""
    context, ca_file = _server_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    peer = SmtpPeer(tmp_path, tls_context=context, require_starttls=True, auth_required=True,
                    authenticator=_authenticator)
    peer.start()
    yield peer
    peer.stop()


def test_starttls_and_login(tls_smtp: SmtpPeer, tmp_path: Path) -> None:
    backend = backend_for(tmp_path, {**tls_smtp.config()["email"], "starttls": True,
                                     "username": "notifier", "password": "s3cret"})
    backend.send(notification(tls_smtp, summary="over TLS"))
    backend.close()
    (got,) = tls_smtp.handler.messages
    assert got.message["Subject"] == "over TLS"
    assert got.session.ssl is not None
    assert got.session.authenticated is True


def test_wrong_password_is_temporary(tls_smtp: SmtpPeer, tmp_path: Path) -> None:
    backend = backend_for(tmp_path, {**tls_smtp.config()["email"], "starttls": True,
                                     "username": "notifier", "password": "wrong"})
    with pytest.raises(TemporaryDeliveryError, match="logging in as notifier.*535") as info:
        backend.send(notification(tls_smtp))
    assert isinstance(info.value.__cause__, smtplib.SMTPAuthenticationError)
    assert tls_smtp.handler.messages == []


def test_untrusted_certificate_is_temporary(tls_smtp: SmtpPeer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.crt"))
    backend = backend_for(tmp_path, {**tls_smtp.config()["email"], "starttls": True,
                                     "username": "notifier", "password": "s3cret"})
    with pytest.raises(TemporaryDeliveryError, match="starting TLS") as info:
        backend.send(notification(tls_smtp))
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert tls_smtp.handler.messages == []


def test_implicit_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context, ca_file = _server_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    peer = SmtpPeer(tmp_path, ssl_context=context)
    peer.start()
    try:
        backend = backend_for(tmp_path, {**peer.config()["email"], "ssl": True})
        backend.send(notification(peer, summary="implicit TLS"))
        backend.close()
        # The same server does not talk to a client that does not start with TLS.
        plain = backend_for(tmp_path, {**peer.config()["email"], "timeout": 0.5})
        with pytest.raises(TemporaryDeliveryError):
            plain.send(notification(peer, summary="in the clear"))
    finally:
        peer.stop()
    assert [m.message["Subject"] for m in peer.handler.messages] == ["implicit TLS"]


# -- Maildir -------------------------------------------------------------------------

def test_maildir_under_the_data_dir_is_the_default(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    backend = EmailBackend(config_from_dict({}))
    backend.setup()
    backend.send(notification(MaildirPeer(tmp_path), summary="to the Maildir"))
    backend.close()
    box = mailbox.Maildir(tmp_path / "share" / "notifier" / "Maildir", create=False)
    (key,) = box.keys()
    with box.get_file(key) as fh:
        message = message_from_bytes(fh.read(), policy=email.policy.default)
    assert message["Subject"] == "to the Maildir"
    assert message["From"] == "notifier@localhost"
    assert message.get_content_type() == "multipart/alternative"


def test_unwritable_maildir_is_temporary(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where a directory should be\n")
    path = tmp_path / "not-a-dir" / "Maildir"
    backend = EmailBackend(config_from_dict({"email": {"maildir": str(path)}}))
    with pytest.raises(TemporaryDeliveryError) as info:
        backend.send(notification(MaildirPeer(tmp_path), address="alice@example.org"))
    assert str(path) in str(info.value) and "alice@example.org" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
