from __future__ import annotations

import socket
import threading

import pytest

from notifier.errors import NotifierError
from notifier.meta.offline import NetworkBlocked, offline

ORIGINAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    yield server
    server.close()


def _nothing_pending(server: socket.socket) -> bool:
    server.settimeout(0)
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def test_connecting_and_resolving_are_blocked_inside(listener):
    address = listener.getsockname()
    with offline() as attempts:
        sock = socket.socket()
        with pytest.raises(NetworkBlocked):
            sock.connect(address)
        assert sock.connect_ex.__name__ == "connect_ex"
        with pytest.raises(NetworkBlocked):
            sock.connect_ex(address)
        sock.close()
        with pytest.raises(NetworkBlocked):
            socket.create_connection(address, timeout=1)
        with pytest.raises(NetworkBlocked):
            socket.gethostbyname("localhost")
    assert attempts == [f"connect to {address!r}", f"connect to {address!r}",
                        "look up '127.0.0.1'", "look up 'localhost'"]
    assert _nothing_pending(listener)


def test_the_error_is_a_connection_error_and_ours():
    with offline(), pytest.raises(ConnectionRefusedError) as caught:
        socket.getaddrinfo("example.org", 443)
    assert isinstance(caught.value, NotifierError)
    assert "look up 'example.org'" in str(caught.value)


def test_nothing_is_left_behind(listener):
    with offline():
        pass
    assert "connect" not in socket.socket.__dict__
    assert "connect_ex" not in socket.socket.__dict__
    assert socket.getaddrinfo is ORIGINAL_GETADDRINFO
    with socket.create_connection(listener.getsockname(), timeout=1):
        conn, _ = listener.accept()
        conn.close()


def test_other_threads_keep_their_network(listener):
    inside, done = threading.Event(), threading.Event()
    outcome = []

    def elsewhere():
        inside.wait(5)
        try:
            with socket.create_connection(listener.getsockname(), timeout=1):
                outcome.append("connected")
        except OSError as exc:
            outcome.append(exc)
        done.set()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    with offline():
        inside.set()
        assert done.wait(5)
        with pytest.raises(NetworkBlocked):
            socket.create_connection(listener.getsockname(), timeout=1)
    thread.join(5)
    assert outcome == ["connected"]
    conn, _ = listener.accept()
    conn.close()


def test_nested_blocks_and_unix_sockets(tmp_path):
    path = str(tmp_path / "sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    try:
        with offline() as outer:
            with offline() as inner:
                with pytest.raises(NetworkBlocked):
                    socket.getaddrinfo("example.org", 80)
            with pytest.raises(NetworkBlocked):
                socket.getaddrinfo("example.net", 80)
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
            client.close()
        assert inner == ["look up 'example.org'"]
        assert outer == ["look up 'example.net'"]
        assert "connect" not in socket.socket.__dict__
    finally:
        server.close()
