"""Sessions, personal access tokens and sign-in links in the store: only hashes are kept,
links work once within 15 minutes, sessions end when they expire or are revoked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier.errors import InputError
from notifier.storage import Store
from notifier.storage import credentials as credentials_module
from notifier.storage.credentials import LINK_TTL, TOKEN_PREFIX, Credentials, secret_hash
from notifier.storage.schema import api_tokens, login_links, sessions

URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
    s.import_users([{"name": "alice"}, {"name": "bob"}])
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def creds(store: Store, clock: Clock) -> Credentials:
    return Credentials(store, clock)


def rows(store: Store, table: object) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(table))]  # type: ignore


def entropy_bits(secret: str, prefix: str = "") -> float:
    """Bits of a URL-safe base64 secret after ``prefix``: 6 per character."""
    assert secret.startswith(prefix)
    body = secret[len(prefix):]
    assert URLSAFE.fullmatch(body), secret
    return len(body) * 6


def test_every_secret_has_at_least_128_bits(creds: Credentials) -> None:
    session = creds.start_session("alice", "link", 3600)
    token, _ = creds.create_token("alice", "laptop", "read")
    link = creds.create_link("alice")
    assert entropy_bits(session) >= 128
    assert entropy_bits(token, TOKEN_PREFIX) >= 128
    assert entropy_bits(link) >= 128
    assert len({session, token, link}) == 3


def test_only_hashes_are_stored(store: Store, creds: Credentials) -> None:
    session = creds.start_session("alice", "link", 3600)
    token, _ = creds.create_token("alice", "laptop", "write")
    link = creds.create_link("alice", "alice@example.org")
    for table, secret in ((sessions, session), (api_tokens, token), (login_links, link)):
        (row,) = rows(store, table)
        assert row["secret_hash"] == secret_hash(secret)
        assert secret not in repr(row)


def test_a_session_lives_until_it_expires_or_ends(creds: Credentials, clock: Clock) -> None:
    secret = creds.start_session("alice", "link", 100)
    found = creds.session(secret)
    assert found is not None and found.user == "alice" and found.method == "link"
    clock.now += 99
    assert creds.session(secret) is not None
    clock.now += 1
    assert creds.session(secret) is None
    other = creds.start_session("alice", "oidc", 100)
    assert creds.end_session(other) is True
    assert creds.session(other) is None
    assert creds.end_session(other) is False


def test_ending_every_session_of_a_user(creds: Credentials) -> None:
    mine = [creds.start_session("alice", "link", 100) for _ in range(2)]
    theirs = creds.start_session("bob", "link", 100)
    assert creds.end_sessions("alice") == 2
    assert [creds.session(s) for s in mine] == [None, None]
    assert creds.session(theirs) is not None


def test_tokens_are_listed_by_name_with_their_last_use(creds: Credentials,
                                                       clock: Clock) -> None:
    b, _ = creds.create_token("alice", "b phone", "write")
    a, _ = creds.create_token("alice", "a laptop", "read")
    creds.create_token("bob", "other", "read")
    listed = creds.tokens("alice")
    assert [(t.name, t.scope, t.last_used) for t in listed] == [
        ("a laptop", "read", None), ("b phone", "write", None)]
    clock.now += 5
    used = creds.token(a)
    assert used is not None and used.user == "alice" and used.scope == "read"
    assert [t.last_used for t in creds.tokens("alice")] == [clock.now, None]
    assert "token" not in listed[0].to_dict()


def test_token_names_and_scopes_are_checked(creds: Credentials) -> None:
    creds.create_token("alice", "laptop", "read")
    with pytest.raises(InputError, match="already has a token named 'laptop'"):
        creds.create_token("alice", "laptop", "write")
    creds.create_token("bob", "laptop", "read")  # names are per user
    with pytest.raises(InputError, match="scope"):
        creds.create_token("alice", "other", "admin")
    with pytest.raises(InputError, match="name"):
        creds.create_token("alice", " ", "read")


def test_a_revoked_token_stops_at_once(creds: Credentials) -> None:
    by_id, token = creds.create_token("alice", "one", "read")
    by_name, _ = creds.create_token("alice", "two", "read")
    assert creds.revoke_token("bob", token.id) is False  # not bob's
    assert creds.token(by_id) is not None
    assert creds.revoke_token("alice", token.id) is True
    assert creds.revoke_token("alice", "two") is True
    assert creds.token(by_id) is None and creds.token(by_name) is None
    assert creds.revoke_token("alice", token.id) is False


def test_unknown_and_malformed_tokens(creds: Credentials) -> None:
    secret, _ = creds.create_token("alice", "one", "read")
    assert creds.token(secret[:-1]) is None
    assert creds.token(secret[len(TOKEN_PREFIX):]) is None  # a session-like secret
    assert creds.token("") is None


def test_a_link_works_once(creds: Credentials) -> None:
    secret = creds.create_link("alice")
    assert creds.link_user(secret) == "alice"
    assert creds.link_user(secret) == "alice"  # looking does not use it
    assert creds.use_link(secret) == "alice"
    assert creds.use_link(secret) is None
    assert creds.link_user(secret) is None
    assert creds.use_link("not a link") is None


def test_a_link_lasts_15_minutes(creds: Credentials, clock: Clock) -> None:
    assert LINK_TTL == 15 * 60
    secret = creds.create_link("alice")
    clock.now += LINK_TTL - 1
    assert creds.link_user(secret) == "alice"
    late = creds.create_link("alice")
    clock.now += 1
    assert creds.link_user(secret) is None
    assert creds.use_link(secret) is None
    assert creds.use_link(late) == "alice"


def test_links_sent_to_an_address_are_counted_within_a_window(creds: Credentials,
                                                              clock: Clock) -> None:
    creds.create_link("alice", "alice@example.org")
    clock.now += 1800
    creds.create_link("alice", "alice@example.org")
    creds.create_link("alice")  # printed by an admin: no address
    assert creds.links_sent("alice@example.org", 3600) == 2
    clock.now += 1801
    assert creds.links_sent("alice@example.org", 3600) == 1


def test_prune_forgets_expired_sessions_and_old_links(store: Store, creds: Credentials,
                                                      clock: Clock) -> None:
    creds.start_session("alice", "link", 10)
    live = creds.start_session("alice", "link", 10_000)
    creds.create_link("alice")
    clock.now += 11
    assert creds.prune() == 1
    clock.now += 86400 + LINK_TTL
    assert creds.prune() == 2  # the long session has expired too, and the day-old link
    assert creds.session(live) is None
    assert rows(store, login_links) == []


def test_the_signing_key_is_made_once_and_kept(store: Store, creds: Credentials) -> None:
    key = creds.signing_key()
    assert len(key) == 32
    assert Credentials(store).signing_key() == key
    assert creds.signing_key("configured") == b"configured"


def test_stored_hashes_are_compared_in_constant_time(
        creds: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    real = credentials_module.hmac.compare_digest

    def compare(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    session = creds.start_session("alice", "link", 100)
    token, _ = creds.create_token("alice", "one", "read")
    link = creds.create_link("alice")
    monkeypatch.setattr(credentials_module.hmac, "compare_digest", compare)
    assert creds.session(session) is not None
    assert creds.token(token) is not None
    assert creds.link_user(link) == "alice"
    assert creds.use_link(link) == "alice"
    assert [a for a, _ in compared] == [secret_hash(s) for s in (session, token, link, link)]


def test_lookups_are_reused_and_revocations_apply_at_once_here_and_soon_elsewhere(
        store: Store, creds: Credentials, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, token = creds.create_token("alice", "laptop", "read")
    session = creds.start_session("alice", "link", 3600)
    elsewhere = Credentials(store, clock)  # another process, e.g. 'notifier tokens revoke'
    assert creds.token(secret).id == elsewhere.token(secret).id == token.id  # type: ignore[union-attr]
    assert creds.session(session) is not None and elsewhere.session(session) is not None
    reads: list[str] = []
    monkeypatch.setattr(store, "_transaction", _counting(store._transaction, reads))
    for _ in range(5):
        assert creds.token(secret) is not None and creds.session(session) is not None
    assert reads == []  # the database is not asked again within CACHE_TTL

    assert creds.revoke_token("alice", token.id) and creds.end_session(session)
    assert creds.token(secret) is None and creds.session(session) is None  # at once, here
    assert elsewhere.token(secret) is not None  # elsewhere, until its lookup is CACHE_TTL old
    monotonic = credentials_module.time.monotonic
    monkeypatch.setattr(credentials_module.time, "monotonic",
                        lambda: monotonic() + credentials_module.CACHE_TTL + 1)
    assert elsewhere.token(secret) is None and elsewhere.session(session) is None


def _counting(transaction, reads):  # type: ignore[no-untyped-def]
    def wrapped(action, **kw):  # type: ignore[no-untyped-def]
        reads.append(action)
        return transaction(action, **kw)
    return wrapped
