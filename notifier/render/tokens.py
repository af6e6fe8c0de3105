"""Unsubscribe tokens: a user and one of their rules, signed with the installation's secret.

A token is ``<payload>.<mac>``, both base64url without padding, so it fits
in a URL path as it is. The payload is the JSON array ``[user, rule]``; the
MAC is HMAC-SHA256 with the secret over a fixed label and the payload, so a
MAC made with the same secret for some other purpose never passes as an
unsubscribe token. Tokens do not expire: the link in a mail has to work for
as long as the rule exists, and using it only switches the rule off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

from ..errors import InputError

_LABEL = b"notifier unsubscribe v1\x00"
_MAC_BYTES = hashlib.sha256().digest_size
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the unsubscribe secret must be non-empty bytes")
    return hmac.new(secret, _LABEL + payload, hashlib.sha256).digest()


def unsubscribe_token(secret: bytes, user: str, rule: str) -> str:
    """A URL-safe token that lets whoever holds it switch off ``rule`` of ``user``."""
    payload = json.dumps([user, rule], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return f"{_b64encode(payload)}.{_b64encode(_mac(secret, payload))}"


def verify_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str]:
    """Check ``token`` against ``secret``; return its ``(user, rule)``.

    Raises :class:`~notifier.errors.InputError` when the token is malformed or
    was not made with this secret (altered, truncated, or from another
    installation).
    """
    payload_part, dot, mac_part = token.partition(".")
    if not dot or not _B64URL.fullmatch(payload_part) or not _B64URL.fullmatch(mac_part):
        raise InputError("unsubscribe token: not of the form <payload>.<signature> "
                         "in base64url")
    try:
        payload = _b64decode(payload_part)
        mac = _b64decode(mac_part)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"unsubscribe token: not base64url: {exc}") from exc
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InputError("unsubscribe token: signature does not match; the link was altered "
                         "or made by another installation")
    try:
        user, rule = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        # Only reachable with the right secret, i.e. a token we did not make.
        raise InputError(f"unsubscribe token: payload is not [user, rule]: {exc}") from exc
    if not isinstance(user, str) or not isinstance(rule, str):
        raise InputError("unsubscribe token: payload is not [user, rule]")
    return user, rule
