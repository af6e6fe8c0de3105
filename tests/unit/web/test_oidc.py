"""notifier.web.oidc without a provider: claims to an identity, and the state a
sign-in keeps (the code flow itself runs against a real provider in
tests/integration/web/test_oidc_flow.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notifier.errors import ProviderError, SignInError
from notifier.web.oidc import PENDING_TTL, OidcSignIn

ISSUER = "https://id.example.org"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class KnownProvider(OidcSignIn):
    """A sign-in whose provider metadata is known without asking for it."""

    async def metadata(self) -> dict[str, Any]:
        return {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks"}


def signin(clock: Clock | None = None, **kw: str) -> KnownProvider:
    return KnownProvider(ISSUER, "notifier", "secret", "https://n.example.org/cb",
                         clock=clock or Clock(), **kw)


def identity_of(claims: dict[str, Any], **kw: str) -> tuple[str, tuple[str, ...],
                                                            tuple[str, ...]]:
    found = signin(**kw)._identity(claims)
    return found.name, found.emails, found.groups


def test_claims_name_the_user_with_their_email_and_groups() -> None:
    claims = {"sub": "1", "preferred_username": "alice", "email": "a@example.org",
              "email_verified": True, "groups": ["packager"]}
    assert identity_of(claims) == ("alice", ("a@example.org",), ("packager",))
    # Other claims, when the site says so; an unverified address is left out.
    claims = {"sub": "1", "nickname": "al", "email": "a@example.org",
              "email_verified": False, "roles": ["qa"]}
    assert identity_of(claims, username_claim="nickname", groups_claim="roles") == (
        "al", (), ("qa",))
    assert identity_of({"sub": "1", "preferred_username": "bob"}) == ("bob", (), ())


@pytest.mark.parametrize("name", [None, "", "  ", 7, ["alice"]])
def test_no_usable_name_refuses_the_sign_in(name: object) -> None:
    with pytest.raises(SignInError, match="'preferred_username'") as caught:
        identity_of({"sub": "1", "preferred_username": name})
    assert caught.value.status == 403


@pytest.mark.parametrize("groups", ["packager", [1, 2], {"a": 1}])
def test_groups_that_are_not_a_list_of_names_are_the_providers_fault(groups: object) -> None:
    with pytest.raises(ProviderError, match="'groups'") as caught:
        identity_of({"sub": "1", "preferred_username": "alice", "groups": groups})
    assert caught.value.status == 502


def test_the_authorization_request_asks_for_the_code_with_pkce() -> None:
    url, state = asyncio.run(signin().begin())
    assert url.startswith(f"{ISSUER}/auth?")
    for part in ("response_type=code", "client_id=notifier", "code_challenge_method=S256",
                 "code_challenge=", "nonce=", f"state={state}", "scope=openid+profile+email"):
        assert part in url
    assert len(state) >= 43  # 256 bits


def test_a_refusal_says_what_the_provider_said() -> None:
    flow = signin()
    url, state = asyncio.run(flow.begin())
    with pytest.raises(SignInError, match="End-User aborted") as caught:
        asyncio.run(flow.finish({"error": "access_denied", "state": state,
                                 "error_description": "End-User aborted interaction"},
                                state))
    assert caught.value.status == 403
    with pytest.raises(SignInError, match="already used"):  # the state is spent
        asyncio.run(flow.finish({"code": "c", "state": state}, state))


def test_a_state_is_good_once_in_its_browser_within_its_time() -> None:
    clock = Clock()
    flow = signin(clock)
    _, state = asyncio.run(flow.begin())
    changed = state[:-1] + ("y" if state.endswith("x") else "x")
    for cookie in (None, "", changed):
        with pytest.raises(SignInError, match="not started in this browser") as caught:
            asyncio.run(flow.finish({"code": "c", "state": state}, cookie))
        assert caught.value.status == 400
    clock.now += PENDING_TTL
    with pytest.raises(SignInError, match="took too long"):
        asyncio.run(flow.finish({"code": "c", "state": state}, state))
