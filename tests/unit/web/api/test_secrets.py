"""Session cookies and CSRF tokens: signed, long enough, and compared in constant time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from notifier.config import config_from_dict
from notifier.storage import Store
from notifier.web.api import auth
from notifier.web.api.auth import COOKIE, CSRF_HEADER, cookie_secret, cookie_value, csrf_token
from notifier.web.api.context import ApiContext
from notifier.web.api.problems import Problem

URLSAFE = re.compile(r"[A-Za-z0-9_-]+")
KEY = bytes(range(32))


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ApiContext]:
    config = config_from_dict({"database_url": f"sqlite:///{tmp_path / 'n.db'}"},
                              str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": "alice"}])
    yield ApiContext.build(config, store, mail=lambda *a, **kw: None)
    store.close()


def request(method: str, headers: dict[str, str]) -> Request:
    return Request({"type": "http", "method": method, "path": "/api/v1/rules",
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                    "query_string": b"", "client": ("127.0.0.1", 1)})


def test_a_cookie_carries_the_secret_and_its_signature() -> None:
    value = cookie_value(KEY, "s3cret")
    assert cookie_secret(KEY, value) == "s3cret"
    secret, _, signature = value.rpartition(".")
    assert secret == "s3cret" and URLSAFE.fullmatch(signature) and len(signature) * 6 >= 256
    tampered = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert cookie_secret(KEY, "s3cret." + tampered) is None
    assert cookie_secret(KEY, "other." + signature) is None
    assert cookie_secret(bytes(32), value) is None
    assert cookie_secret(KEY, "s3cret") is None


def test_a_csrf_token_has_at_least_128_bits_and_differs_per_session() -> None:
    token = csrf_token(KEY, "one")
    assert URLSAFE.fullmatch(token) and len(token) * 6 >= 128
    assert token != csrf_token(KEY, "two")
    assert token != csrf_token(bytes(32), "one")
    assert token == csrf_token(KEY, "one")


def test_the_cookie_signature_is_compared_in_constant_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest",
                        lambda a, b: compared.append((a, b)) or real(a, b))
    value = cookie_value(KEY, "s3cret")
    assert cookie_secret(KEY, value) == "s3cret"
    assert cookie_secret(KEY, value[:-1]) is None
    assert len(compared) == 2


def test_the_csrf_token_is_compared_in_constant_time(
        ctx: ApiContext, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = ctx.credentials.start_session("alice", "link", 3600)
    cookie = f"{COOKIE}={cookie_value(ctx.key, secret)}"
    good = csrf_token(ctx.key, secret)
    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest",
                        lambda a, b: compared.append((a, b)) or real(a, b))
    caller = auth._reader(request("POST", {"cookie": cookie, CSRF_HEADER: good}), ctx)
    assert caller.name == "alice" and caller.csrf == good
    with pytest.raises(Problem) as refused:
        auth._reader(request("DELETE", {"cookie": cookie, CSRF_HEADER: good[:-1]}), ctx)
    assert refused.value.status == 403
    with pytest.raises(Problem) as missing:
        auth._reader(request("PUT", {"cookie": cookie}), ctx)
    assert missing.value.status == 403
    csrf_compares = [pair for pair in compared if pair[1] == good.encode()]
    assert [a for a, _ in csrf_compares] == [good.encode(), good[:-1].encode(), b""]
    assert auth._reader(request("GET", {"cookie": cookie}), ctx).name == "alice"
