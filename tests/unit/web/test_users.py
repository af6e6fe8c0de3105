"""Feed users: local records only, unknown names remembered for a while, tokens compared alike."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.web import users as users_module
from notifier.web.users import FeedUsers, NegativeCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_negative_cache_forgets_after_its_ttl() -> None:
    clock = Clock()
    cache = NegativeCache(ttl=60, clock=clock)
    cache.add("nobody")
    assert "nobody" in cache
    clock.now += 59
    assert "nobody" in cache
    clock.now += 2
    assert "nobody" not in cache
    assert len(cache) == 0


def test_negative_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = NegativeCache(ttl=60, capacity=3, clock=Clock())
    for name in ("a", "b", "c", "d", "e"):
        cache.add(name)
    assert len(cache) == 3
    assert [n for n in "abcde" if n in cache] == ["c", "d", "e"]


ALICE = {"name": "alice", "feed_token": "t" * 43, "source": "local"}


def make(records: dict[str, dict[str, Any]], cached: dict[str, dict[str, Any]] | None = None
         ) -> tuple[FeedUsers, list[str], dict[str, dict[str, Any]]]:
    loads: list[str] = []
    memory = dict(cached or {})

    def load(name: str) -> dict[str, Any] | None:
        loads.append(name)
        return records.get(name)

    users = FeedUsers(memory.get, load, lambda r: memory.__setitem__(r["name"], r),
                      NegativeCache(ttl=60, clock=Clock()))
    return users, loads, memory


def test_memory_first_then_the_database_once_for_either_answer() -> None:
    users, loads, memory = make({"bob": {"name": "bob", "feed_token": "b" * 43}},
                                {"alice": ALICE})
    assert users.known("alice") == (True, ALICE)
    assert users.known("bob") == (False, None)
    assert users.load("bob") is not None and "bob" in memory
    assert users.known("bob")[0] is True
    assert users.known("nobody") == (False, None)
    assert users.load("nobody") is None
    assert users.known("nobody") == (True, None)
    assert loads == ["bob", "nobody"]


def test_a_directory_profile_in_the_cache_opens_nothing() -> None:
    users, _, _ = make({}, {"eve": {"name": "eve", "feed_token": None, "source": "fasjson"}})
    assert users.known("eve") == (False, None)


def test_unknown_user_and_wrong_token_are_compared_the_same_way(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = users_module.hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(users_module.hmac, "compare_digest", compare)
    users, _, _ = make({})
    assert users.check(ALICE, ALICE["feed_token"]) is ALICE
    assert users.check(ALICE, "wrong") is None
    assert users.check(None, "wrong") is None
    assert users.check(None, None) is None
    assert users.check({"name": "x", "feed_token": None}, "") is None
    assert len(compared) == 5  # every answer compared a token of full length
    assert all(len(expected) == 43 for _, expected in compared)
