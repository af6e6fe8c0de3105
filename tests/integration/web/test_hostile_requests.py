"""Hostile HTTP against the real server, over raw sockets: slow, malformed, oversized, pipelined."""

from __future__ import annotations

import logging
import re
import time

import pytest

from tests.conftest import wait_for
from tests.integration.web.conftest import Site, read_all, unread

pytestmark = pytest.mark.integration


def responses(data: bytes) -> list[bytes]:
    """The status lines in ``data``, in order (a body need not end with a line break)."""
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r\n]*", data)


@pytest.mark.http(request_timeout=1.0)
def test_a_client_sending_its_headers_byte_by_byte_is_cut_off(site: Site) -> None:
    sock = site.connect()
    started = time.monotonic()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    sent = 0
    try:
        for byte in request:
            sock.sendall(bytes([byte]))
            sent += 1
            time.sleep(0.02)  # the slow client is the scenario: nothing to wait for
    except OSError:
        pass  # cut off while sending: what is asserted below
    answer = read_all(sock)
    elapsed = time.monotonic() - started
    assert sent < len(request), "the server waited for the whole slow request"
    assert responses(answer) == [b"HTTP/1.1 408 Request Timeout"]
    assert elapsed < 3.5
    # Meanwhile, and afterwards, everyone else is served.
    with site.client() as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.http(request_timeout=1.0)
def test_a_body_that_never_ends_is_cut_off(site: Site) -> None:
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                 + b"List-Unsub")
    started = time.monotonic()
    answer = read_all(sock)
    assert time.monotonic() - started < 3.5
    assert b"disabled" not in answer  # the request never reached its end


@pytest.mark.http(request_timeout=1.0)
def test_an_idle_connection_is_closed(site: Site) -> None:
    sock = site.connect()
    started = time.monotonic()
    assert responses(read_all(sock)) == [b"HTTP/1.1 408 Request Timeout"]
    assert time.monotonic() - started < 3.5


@pytest.mark.parametrize("length", [b"-1", b"abc", b"+5", b"5 5", b"0x10", b""])
def test_a_bad_content_length_is_a_400(site: Site, length: bytes) -> None:
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nContent-Length: " + length
                 + b"\r\n\r\nList-Unsubscribe=One-Click")
    answer = read_all(sock)
    assert responses(answer) == [b"HTTP/1.1 400 Bad Request"]
    assert b"disabled" not in answer


def test_conflicting_content_lengths_are_a_400(site: Site) -> None:
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Content-Length: 26\r\n\r\nList-Unsubscribe=One-Click")
    assert responses(read_all(sock)) == [b"HTTP/1.1 400 Bad Request"]


SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("framing", [
    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n",
])
def test_content_length_with_transfer_encoding_is_refused(site: Site, framing: bytes) -> None:
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\n" + framing + SMUGGLED)
    answer = read_all(sock)
    assert responses(answer) == [b"HTTP/1.1 400 Bad Request"]
    assert b"service metrics" not in answer


@pytest.mark.http(max_body_bytes=1000)
def test_an_oversized_body_is_a_413_and_smuggles_nothing(site: Site) -> None:
    body = b"x" * 70_000 + SMUGGLED + b"y" * 100
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n")
    try:
        sock.sendall(body)
    except OSError:
        pass  # the server may close before it all went
    answer = read_all(sock)
    assert responses(answer) == [b"HTTP/1.1 413 Request Entity Too Large"]
    assert b"service metrics" not in answer and b"disabled" not in answer


@pytest.mark.http(max_body_bytes=1000)
def test_an_oversized_chunked_body_is_a_413(site: Site, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    chunk = b"x" * 600
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                 b"\r\n\r\n" + (b"258\r\n" + chunk + b"\r\n") * 3 + b"0\r\n\r\n" + SMUGGLED)
    answer = read_all(sock)
    assert responses(answer) == [b"HTTP/1.1 413 Request Entity Too Large"]
    assert b"service metrics" not in answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # refused, not failed


def test_a_body_within_the_limit_goes_through(site: Site) -> None:
    sock = site.connect()
    sock.sendall(b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n"
                 b"Connection: close\r\n\r\nList-Unsubscribe=One-Click")
    answer = read_all(sock)
    assert responses(answer) == [b"HTTP/1.1 200 OK"]
    assert b"Rule 'git' of alice is now disabled." in answer


@pytest.mark.http(max_header_bytes=4096)
def test_oversized_headers_are_refused_whole(site: Site) -> None:
    sock = site.connect()
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000
                     + b"\r\n\r\n")
    except OSError:
        pass
    assert responses(read_all(sock)) == [b"HTTP/1.1 431 Request Header Fields Too Large"]


@pytest.mark.http(max_header_bytes=4096)
def test_oversized_headers_are_refused_in_pieces(site: Site) -> None:
    sock = site.connect()
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5_000)
        wait_for(lambda: unread(sock) in (0, None), "the server to read the first piece")
        sock.sendall(b"a" * 5_000 + b"\r\n\r\n")
    except OSError:
        pass
    assert responses(read_all(sock)) == [b"HTTP/1.1 400 Bad Request"]


def test_pipelined_requests_are_answered_in_order_once_each(site: Site) -> None:
    sock = site.connect()
    sock.sendall(b"GET /healthz/live HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /unsubscribe/good HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\n"
                 b"List-Unsubscribe=One-Click"
                 b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = read_all(sock)
    assert responses(answer) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found",
                                 b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
    assert answer.index(b'"status":"live"') < answer.index(b"not found") \
        < answer.index(b"now disabled") < answer.index(b"service metrics")
    assert answer.count(b"service metrics") == 1
