"""A stand-in for a browser vendor's push service, on loopback, and browsers subscribed to it.

The real push services (Mozilla's, Google's) cannot be reached from here, so
the tests run this one: an HTTP server that takes RFC 8030 pushes the way a
push service does, and checks what it gets as a browser would:

* ``Authorization: vapid t=<JWT>, k=<key>`` (RFC 8292): the JWT is ES256,
  signed by ``k``, with ``aud`` the endpoint's origin, an ``exp`` within 24
  hours and a ``sub``;
* a ``TTL`` header (a number) and an ``Urgency`` of the four RFC 8030 names;
* a body encrypted with ``aes128gcm`` for the subscription's keys (RFC 8291),
  decrypted with http_ece and the :class:`Browser`'s private key and auth
  secret.

A push that fails a check is answered 400 and recorded in ``problems``.
Each browser may be told what to answer (``answers``: statuses used up one
per push, then 201), e.g. ``[503]`` to make the first push fail, or
``[410] * 99`` for a browser that unsubscribed.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

URGENCIES = ("very-low", "low", "normal", "high")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscribed browser: its own ECDH key and auth secret, and what it answers."""

    user: str
    path: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    answers: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


@dataclass(frozen=True)
class Push:
    """One push the service took (or refused), decrypted."""

    user: str
    path: str
    status: int
    ttl: int
    urgency: str
    #: the VAPID public key (``k``) and the JWT's claims
    key: str
    claims: dict[str, Any]
    payload: dict[str, Any]


def verify_vapid(header: str, origin: str) -> tuple[str, dict[str, Any]]:
    """The key and claims of a ``vapid t=..., k=...`` header; AssertionError if invalid."""
    scheme, _, params = header.partition(" ")
    assert scheme.lower() == "vapid", f"Authorization scheme {scheme!r}, not vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    token, key = parts["t"], parts["k"]
    head_b64, claims_b64, sig_b64 = token.split(".")
    head = json.loads(unb64url(head_b64))
    assert head.get("alg") == "ES256", head
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    signature = unb64url(sig_b64)
    assert len(signature) == 64, "an ES256 signature is r and s, 32 bytes each"
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise AssertionError("the JWT's signature does not verify with k") from exc
    claims = json.loads(unb64url(claims_b64))
    assert claims.get("aud") == origin, f"aud {claims.get('aud')!r}, not {origin!r}"
    assert time.time() < claims["exp"] <= time.time() + 86400, f"exp {claims['exp']}"
    assert claims.get("sub"), "no sub"
    return key, claims


class PushService:
    """The stand-in push service on 127.0.0.1; endpoints are ``/push/<n>``."""

    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.pushes: list[Push] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                status = service._take(self)
                self.send_response(status)
                browser = service.browsers.get(self.path)
                for name, value in (browser.headers if browser and status != 201 else {}
                                    ).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def browser(self, user: str, answers: list[int] | None = None) -> Browser:
        """A new browser of ``user`` subscribed here."""
        with self.lock:
            path = f"/push/{len(self.browsers) + 1}"
            browser = Browser(user, path, answers=list(answers or []))
            self.browsers[path] = browser
        return browser

    def endpoint(self, browser: Browser) -> str:
        return self.origin + browser.path

    def subscription(self, browser: Browser) -> dict[str, Any]:
        """What the browser's ``PushSubscription.toJSON()`` gives."""
        return {"endpoint": self.endpoint(browser), "expirationTime": None,
                "keys": browser.keys()}

    def taken(self, user: str | None = None) -> list[Push]:
        """The pushes answered 201 (to ``user``'s browsers), oldest first."""
        with self.lock:
            return [p for p in self.pushes if p.status == 201 and user in (None, p.user)]

    def _take(self, request: BaseHTTPRequestHandler) -> int:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        browser = self.browsers.get(request.path)
        if browser is None:
            return 404
        try:
            key, claims = verify_vapid(request.headers.get("Authorization", ""), self.origin)
            ttl = int(request.headers["TTL"])
            urgency = request.headers.get("Urgency", "normal")
            assert urgency in URGENCIES, f"Urgency {urgency!r}"
            assert request.headers.get("Content-Encoding") == "aes128gcm"
            assert len(body) <= 4096, f"{len(body)} bytes: more than 4096"
            plain = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth,
                                     version="aes128gcm")
            payload = json.loads(plain)
        except (AssertionError, KeyError, ValueError, http_ece.ECEException) as exc:
            with self.lock:
                self.problems.append(f"{request.path}: {type(exc).__name__}: {exc}")
            return 400
        with self.lock:
            status = browser.answers.pop(0) if browser.answers else 201
            self.pushes.append(Push(browser.user, browser.path, status, ttl, urgency, key,
                                    claims, payload))
        return status
