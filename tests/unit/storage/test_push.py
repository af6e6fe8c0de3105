"""Push subscriptions: their checks, their rows, and the VAPID key (SQLite)."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.errors import InputError
from notifier.storage import Store
from notifier.storage.push import (
    MAX_PER_USER,
    PushSubscriptions,
    UnresolvedEndpoint,
    application_server_key,
    b64url,
    b64url_decode,
    check_endpoint,
    check_keys,
)


def dns(*addresses: str) -> Any:
    """A resolver that answers ``addresses`` for every host (no DNS here)."""
    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]
    return resolve


def keys() -> tuple[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point), b64url(os.urandom(16))


@pytest.fixture
def subs(tmp_path: Path) -> Iterator[PushSubscriptions]:
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        yield PushSubscriptions(store, resolve=dns("93.184.216.34"))
    finally:
        store.close()


def test_base64url_with_or_without_padding() -> None:
    assert b64url_decode(b64url(b"\xfb\xff\x00")) == b"\xfb\xff\x00"
    assert b64url_decode("-_8=") == b"\xfb\xff"
    with pytest.raises(ValueError):
        b64url_decode("+/8")


def test_keys_must_have_the_right_lengths_and_be_on_the_curve() -> None:
    p256dh, auth = keys()
    check_keys(p256dh, auth)
    with pytest.raises(InputError, match="^keys.auth: must be 16 bytes, not 12"):
        check_keys(p256dh, b64url(os.urandom(12)))
    with pytest.raises(InputError, match="^keys.p256dh: .*65 bytes"):
        check_keys(b64url(os.urandom(33)), auth)
    off_curve = b64url(b"\x04" + b"\x01" * 64)
    with pytest.raises(InputError, match="^keys.p256dh: not a point"):
        check_keys(off_curve, auth)
    with pytest.raises(InputError, match="^keys.p256dh: not base64url"):
        check_keys(base64.b64encode(os.urandom(65)).decode().replace("A", "+") + "+", auth)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "192.168.1.1", "172.16.0.1",
                                     "169.254.169.254", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "100.64.0.1", "0.0.0.0", "224.0.0.1"])
def test_endpoints_on_addresses_that_are_not_public_are_refused(address: str) -> None:
    with pytest.raises(InputError, match="^endpoint: .*not a public address"):
        check_endpoint("https://push.example.net/x", resolve=dns("93.184.216.34", address))
    # ... unless the test setting allows them
    assert check_endpoint("https://push.example.net/x", allow_private=True,
                          resolve=dns(address))[2] == [address]


def test_endpoint_urls() -> None:
    public = dns("93.184.216.34", "2606:2800:220:1::1")
    assert check_endpoint("https://push.example.net/wpush/v2/abc", resolve=public) == (
        "push.example.net", 443, ["93.184.216.34", "2606:2800:220:1::1"])
    assert check_endpoint("https://push.example.net:8443/x", resolve=public)[1] == 8443
    for url, why in [("http://push.example.net/x", "over https"),
                     ("ftp://push.example.net/x", "over https"),
                     ("https://user:pw@push.example.net/x", "without a user name"),
                     ("https:///x", "must name a host"),
                     ("https://push.example.net:99999/x", "not a URL"),
                     ("https://push.example.net/" + "x" * 3000, "at most")]:
        with pytest.raises(InputError, match=why):
            check_endpoint(url, resolve=public)
    assert check_endpoint("http://127.0.0.1:9/x", allow_private=True,
                          resolve=dns("127.0.0.1"))[1] == 9
    with pytest.raises(UnresolvedEndpoint):
        check_endpoint("https://nowhere.example.net/x", resolve=dns())


def test_add_renew_list_and_remove(subs: PushSubscriptions) -> None:
    p256dh, auth = keys()
    first = subs.add("alice", "https://push.example.net/1", p256dh, auth, "Firefox\x00 on Linux")
    assert first.user_agent == "Firefox on Linux" and first.last_success is None
    renewed_keys = keys()
    renewed = subs.add("alice", "https://push.example.net/1", *renewed_keys, None)
    assert renewed.id == first.id and (renewed.p256dh, renewed.auth) == renewed_keys
    other = subs.add("bob", "https://push.example.net/2", *keys())
    assert [s.id for s in subs.list("alice")] == [first.id]
    assert "auth" not in first.to_dict() and "p256dh" not in first.to_dict()
    assert not subs.remove("alice", other.id)  # bob's
    subs.note_success(other.id)
    assert subs.list("bob")[0].last_success is not None
    assert subs.remove("alice", first.id) and subs.list("alice") == []
    assert subs.remove_gone(other.id) and not subs.remove_gone(other.id)


def test_a_bad_subscription_is_not_stored(subs: PushSubscriptions) -> None:
    with pytest.raises(InputError, match="^keys.auth"):
        subs.add("alice", "https://push.example.net/1", keys()[0], "c2hvcnQ")
    with pytest.raises(InputError, match="^endpoint"):
        subs.add("alice", "http://push.example.net/1", *keys())
    assert subs.list("alice") == []


def test_a_user_has_a_limited_number_of_browsers(subs: PushSubscriptions) -> None:
    for n in range(MAX_PER_USER):
        subs.add("alice", f"https://push.example.net/{n}", *keys())
    with pytest.raises(InputError, match="remove one first"):
        subs.add("alice", "https://push.example.net/more", *keys())
    subs.add("alice", "https://push.example.net/0", *keys())  # renewing one is fine


def test_the_vapid_key_is_made_once_and_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    with Store(url) as store:
        first = application_server_key(PushSubscriptions(store).vapid_key())
    with Store(url) as store:
        assert application_server_key(PushSubscriptions(store).vapid_key()) == first
    point = b64url_decode(first)
    assert len(point) == 65 and point[0] == 4
