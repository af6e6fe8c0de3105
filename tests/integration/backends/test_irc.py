"""The IRC backend against real servers (miniircd, ngircd) and a real IRC client."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notifier.backends import irc as irc_backend
from notifier.backends.irc import IrcBackend
from notifier.config import config_from_dict
from notifier.errors import PermanentDeliveryError, TemporaryDeliveryError
from notifier.notification import Notification
from tests.conftest import free_port, poll, wait_for

from .peers_irc import IrcListener, IrcServer

pytestmark = pytest.mark.integration


def note(nick: str, line: str, msg_id: str = "2024-abc") -> Notification:
    return Notification(user=nick, destination="irc", address=nick, msg_id=msg_id,
                        topic="org.fedoraproject.dev.bodhi.update.comment", app="bodhi",
                        content={"line": line})


def backend_for(port: int, **irc: object) -> IrcBackend:
    settings = {"host": "127.0.0.1", "port": port, "nick": "notifier", "rate": 100.0,
                "burst": 50, **irc}
    kwargs = {k: settings.pop(k) for k in list(settings)
              if k in ("send_timeout", "reconnect_base", "reconnect_max", "ssl_context",
                       "connect_factory")}
    return IrcBackend(config_from_dict({"irc": settings}), **kwargs)


@pytest.fixture(scope="module")
def miniircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IrcServer]:
    server = IrcServer("miniircd", tmp_path_factory.mktemp("miniircd")).start()
    yield server
    server.stop()


@pytest.fixture
def listeners() -> Iterator[list[IrcListener]]:
    made: list[IrcListener] = []
    yield made
    for listener in made:
        listener.close()


def listen(made: list[IrcListener], port: int, nick: str) -> IrcListener:
    listener = IrcListener(port, nick)
    made.append(listener)
    return listener


def test_user_receives_exact_line(miniircd, listeners):
    alice = listen(listeners, miniircd.port, "alice")
    line = "\x0304bodhi\x03 ünïcode update FEDORA-2024-1 pushed to \x02stable\x02 https://x.test/1"
    with backend_for(miniircd.port) as backend:
        started = time.monotonic()
        backend.send(note("alice", line))
        latency = time.monotonic() - started
        [got] = alice.wait_for(1, timeout=5)
        assert backend.nick == "notifier"
    assert got.text == line
    assert got.sender == "notifier"
    assert got.target == "alice"
    # The common case returns after one round trip, not after a fixed wait.
    assert latency < 2.0


def test_unknown_nick_is_permanent_and_connection_stays_usable(miniircd, listeners):
    bob = listen(listeners, miniircd.port, "bob")
    with backend_for(miniircd.port, nick="notif2") as backend:
        with pytest.raises(PermanentDeliveryError, match=r"'nobody_here'.*401"):
            backend.send(note("nobody_here", "lost"))
        backend.send(note("bob", "still here"))
        assert [m.text for m in bob.wait_for(1, timeout=5)] == ["still here"]


def test_nick_in_use_registers_with_underscore(miniircd, listeners):
    listen(listeners, miniircd.port, "notif3")
    listen(listeners, miniircd.port, "notif3_")
    carol = listen(listeners, miniircd.port, "carol")
    with backend_for(miniircd.port, nick="notif3") as backend:
        backend.send(note("carol", "from the second fallback nick"))
        assert backend.nick == "notif3__"
    [got] = carol.wait_for(1, timeout=5)
    assert (got.sender, got.text) == ("notif3__", "from the second fallback nick")


def test_a_stand_in_nick_is_given_up_for_the_own_one_once_free(miniircd, listeners,
                                                               monkeypatch):
    # As after a handover: the dead holder's connection still has the nick a moment.
    monkeypatch.setattr(irc_backend, "NICK_RETRY", 0.2)
    squatter = listen(listeners, miniircd.port, "notif6")
    erin = listen(listeners, miniircd.port, "erin")
    with backend_for(miniircd.port, nick="notif6") as backend:
        backend.send(note("erin", "as a stand-in"))
        assert backend.nick == "notif6_"
        # Asked again meanwhile, and refused: the stand-in stays, and delivers.
        assert not poll(lambda: backend.nick != "notif6_", 0.5)
        squatter.close()
        wait_for(lambda: backend.nick == "notif6", "the nick taken back", timeout=5)
        backend.send(note("erin", "as myself"))
    assert [(m.sender, m.text) for m in erin.wait_for(2, timeout=5)] == [
        ("notif6_", "as a stand-in"), ("notif6", "as myself")]


def test_rate_limit_spaces_lines(miniircd, listeners):
    dave = listen(listeners, miniircd.port, "dave")
    rate, burst, count = 10.0, 2, 7
    lines = [f"line {i}" for i in range(count)]
    with backend_for(miniircd.port, nick="notif4", rate=rate, burst=burst) as backend:
        assert backend.wait_registered(5)
        started = time.monotonic()
        for line in lines:
            backend.send(note("dave", line))
        elapsed = time.monotonic() - started
    assert [m.text for m in dave.wait_for(count, timeout=5)] == lines
    # 2 go at once, the other 5 one every 0.1 s; allow for timer granularity.
    assert elapsed >= (count - burst) / rate * 0.9
    assert elapsed < 5.0


def test_invalid_lines_and_nicks_are_permanent(miniircd):
    with backend_for(miniircd.port, nick="notif5") as backend:
        for bad in ("two words", "#channel", "a,b", ""):
            with pytest.raises(PermanentDeliveryError, match="not a valid IRC nick"):
                backend.send(note(bad, "x"))
        with pytest.raises(PermanentDeliveryError, match="CR, LF or NUL"):
            backend.send(note("alice", "one\r\nQUIT :injected"))
        with pytest.raises(PermanentDeliveryError, match="512"):
            backend.send(note("alice", "x" * 600))
        with pytest.raises(PermanentDeliveryError, match="content\\['line'\\]"):
            backend.send(note("alice", ""))


def test_no_server_is_temporary():
    port = free_port()  # nothing listens there
    with backend_for(port, send_timeout=1.0, reconnect_base=0.1, reconnect_max=0.2) as backend:
        started = time.monotonic()
        with pytest.raises(TemporaryDeliveryError,
                           match=rf"not connected .*{port}.*cannot connect"):
            backend.send(note("alice", "nobody to take it"))
        assert time.monotonic() - started < 3


def test_no_reconnect_due_within_wait_fails_fast():
    port = free_port()
    with backend_for(port, send_timeout=5.0, reconnect_base=60.0,
                     reconnect_max=60.0) as backend:
        started = time.monotonic()
        # The first attempt fails at once and the next is due after the wait.
        with pytest.raises(TemporaryDeliveryError, match="cannot connect.*next attempt in"):
            backend.send(note("alice", "first"))
        with pytest.raises(TemporaryDeliveryError, match="cannot connect.*next attempt in"):
            backend.send(note("alice", "second"))
        assert time.monotonic() - started < 1.0


def test_sasl_without_server_support_fails_closed(miniircd, listeners):
    erin = listen(listeners, miniircd.port, "erin")
    with backend_for(miniircd.port, nick="notif6", sasl_username="bot",
                     sasl_password="secret", send_timeout=2.0) as backend:
        with pytest.raises(TemporaryDeliveryError, match="sasl"):
            backend.send(note("erin", "must not go out unauthenticated"))
        assert backend.nick is None
    assert erin.wait_for(1, timeout=0.3) == []


class Gate:
    """Opens TCP connections while open; refuses them while closed."""

    def __init__(self) -> None:
        self.open = True

    def __call__(self, address: tuple[str, int]) -> socket.socket:
        if not self.open:
            raise ConnectionRefusedError(f"gate closed for {address}")
        return socket.create_connection(address, timeout=5)


def test_server_restart_mid_stream_loses_no_line(tmp_path, listeners):
    server = IrcServer("miniircd", tmp_path / "irc").start()
    gate = Gate()
    lines = [f"restart line {i}" for i in range(8)]
    try:
        before = listen(listeners, server.port, "frank")
        backend = backend_for(server.port, rate=5.0, burst=1, send_timeout=20.0,
                              reconnect_base=0.1, reconnect_max=0.3, connect_factory=gate)
        with backend, ThreadPoolExecutor(len(lines)) as pool:
            assert backend.wait_registered(5)
            results = [pool.submit(backend.send, note("frank", line)) for line in lines]
            before.wait_for(2, timeout=5)
            # The listener must be back before the bot, or the bot's lines
            # would meet "401 No such nick".
            gate.open = False
            server.kill()
            server.start()
            after = listen(listeners, server.port, "frank")
            gate.open = True
            for result in results:
                result.result(timeout=25)  # raises if any send failed
            after.wait_for(len(lines) - len(before.messages), timeout=10)
    finally:
        server.stop()
    got_before, got_after = before.texts(), after.texts()
    assert set(got_before) | set(got_after) == set(lines)
    assert len(got_before) >= 2 and got_after, (got_before, got_after)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1: (pem with key and certificate, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    pem, crt = tmp_path / "server.pem", tmp_path / "server.crt"
    pem.write_bytes(key_pem + cert_pem)
    crt.write_bytes(cert_pem)
    return pem, crt


def test_tls_checks_the_server_certificate(tmp_path, listeners):
    pem, crt = self_signed(tmp_path)
    server = IrcServer("miniircd", tmp_path / "irc", pem=pem).start()
    try:
        trusted = ssl.create_default_context(cafile=str(crt))
        with backend_for(server.port, tls=True, ssl_context=trusted, send_timeout=3.0,
                         reconnect_base=0.1, reconnect_max=0.2) as backend:
            # the listener connects in plain text, so it waits for the bot instead
            assert backend.wait_registered(5)
            with pytest.raises(PermanentDeliveryError, match="401"):
                backend.send(note("nobody_here", "over TLS"))
        with backend_for(server.port, tls=True, send_timeout=1.0, reconnect_base=0.1,
                         reconnect_max=0.2) as untrusting:
            with pytest.raises(TemporaryDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
                untrusting.send(note("alice", "to an unknown certificate"))
    finally:
        server.stop()


def test_ngircd_delivers_and_rejects(tmp_path, listeners):
    server = IrcServer("ngircd", tmp_path / "ngircd").start()
    try:
        gina = listen(listeners, server.port, "gina")
        with backend_for(server.port) as backend:
            backend.send(note("gina", "via \x02ngircd\x02"))
            with pytest.raises(PermanentDeliveryError, match="401"):
                backend.send(note("nobody", "lost"))
        [got] = gina.wait_for(1, timeout=10)
        assert (got.sender, got.text) == ("notifier", "via \x02ngircd\x02")
    finally:
        server.stop()
