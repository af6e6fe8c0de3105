"""Unsubscribe tokens: round trip, URL safety, and rejection of anything altered."""

from __future__ import annotations

import base64
import re

import pytest

from notifier.errors import InputError
from notifier.render import unsubscribe_token, verify_unsubscribe_token

SECRET = b"k" * 32


@pytest.mark.parametrize(("user", "rule"), [
    ("bob", "my-packages"), ("ünïcødé", "règle 1"), ("a.b", "rule,with,commas"),
    ("", ""), ("x\x00y", "[\"tricky\"]")])
def test_round_trip(user: str, rule: str) -> None:
    token = unsubscribe_token(SECRET, user, rule)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert verify_unsubscribe_token(SECRET, token) == (user, rule)


def test_tokens_differ_by_user_rule_and_secret() -> None:
    token = unsubscribe_token(SECRET, "bob", "r")
    assert token == unsubscribe_token(SECRET, "bob", "r")
    others = {unsubscribe_token(SECRET, "bob", "s"), unsubscribe_token(SECRET, "bo", "br"),
              unsubscribe_token(b"other", "bob", "r")}
    assert token not in others and len(others) == 3


def test_other_secret_is_rejected() -> None:
    token = unsubscribe_token(b"installation A", "bob", "r")
    with pytest.raises(InputError, match="signature does not match"):
        verify_unsubscribe_token(b"installation B", token)


def test_altered_payload_is_rejected() -> None:
    payload, mac = unsubscribe_token(SECRET, "bob", "r").split(".")
    forged = base64.urlsafe_b64encode(b'["alice","r"]').rstrip(b"=").decode()
    with pytest.raises(InputError, match="signature does not match"):
        verify_unsubscribe_token(SECRET, f"{forged}.{mac}")


@pytest.mark.parametrize("position", [0, 5, -1])
def test_every_flipped_character_is_rejected(position: int) -> None:
    token = unsubscribe_token(SECRET, "bob", "r")
    for index in (position, token.index(".") + 1 + position if position >= 0 else position):
        swapped = "A" if token[index] != "A" else "B"
        with pytest.raises(InputError):
            verify_unsubscribe_token(SECRET, token[:index] + swapped + token[index + 1:])


@pytest.mark.parametrize("token", ["", "nodot", ".", "abc.", ".abc", "a b.c", "abc.d!f",
                                   "a.b.c", "A.AAAA"])
def test_malformed_tokens_are_input_errors(token: str) -> None:
    with pytest.raises(InputError, match="unsubscribe token"):
        verify_unsubscribe_token(SECRET, token)


def test_truncated_mac_is_rejected() -> None:
    token = unsubscribe_token(SECRET, "bob", "r")
    with pytest.raises(InputError):
        verify_unsubscribe_token(SECRET, token[:-4])
