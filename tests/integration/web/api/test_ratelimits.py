"""Rate limits over HTTP: per signed-in user and per client address, 429 with Retry-After."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.web.conftest import Site

from .conftest import API, bearer, make_token

pytestmark = pytest.mark.integration


def from_address(site: Site, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (on loopback, 127.0.0.0/8)."""
    return httpx.Client(base_url=site.base, timeout=10,
                        transport=httpx.HTTPTransport(local_address=address))


def assert_limited(answer: httpx.Response, what: str) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert 1 <= int(answer.headers["Retry-After"]) <= 120
    assert what in answer.json()["detail"]


@pytest.mark.api(web={"user_rate": 3, "address_rate": 1000})
def test_each_user_has_a_rate(api_site: Site) -> None:
    alice, also_alice = make_token(api_site, "alice"), make_token(api_site, "alice")
    bob = make_token(api_site, "bob")
    with api_site.client() as client:
        for _ in range(3):
            assert client.get(f"{API}/rules", headers=bearer(alice)).status_code == 200
        assert_limited(client.get(f"{API}/rules", headers=bearer(also_alice)), "for this user")
        assert client.get(f"{API}/rules", headers=bearer(bob)).status_code == 200


@pytest.mark.api(web={"user_rate": 1000, "address_rate": 4})
def test_each_address_has_a_rate(api_site: Site) -> None:
    token = make_token(api_site, "alice")
    with from_address(api_site, "127.0.0.2") as one, from_address(api_site, "127.0.0.3") as two:
        for _ in range(4):
            assert one.get(f"{API}/rules", headers=bearer(token)).status_code == 200
        assert_limited(one.get(f"{API}/rules", headers=bearer(token)), "from this address")
        # before any credentials are looked at; and a forwarded-for header changes nothing
        assert_limited(one.get(f"{API}/users/me"), "from this address")
        assert_limited(one.get(f"{API}/users/me", headers={"X-Forwarded-For": "192.0.2.9"}),
                       "from this address")
        assert_limited(one.post(f"{API}/signin/email", json={"address": "a@example.org"}),
                       "from this address")
        assert one.get(f"/signin/link/{'x' * 43}").status_code == 429
        assert two.get(f"{API}/rules", headers=bearer(token)).status_code == 200


@pytest.mark.api(web={"user_rate": 2, "address_rate": 1000})
def test_asking_for_sign_in_links_has_a_rate_per_address(api_site: Site) -> None:
    with api_site.client() as client:
        def ask(address: str) -> httpx.Response:
            return client.post(f"{API}/signin/email", json={"address": address})

        assert [ask("nobody@example.org").status_code for _ in range(2)] == [202, 202]
        assert_limited(ask("NOBODY@example.org"), "for this address")
        assert ask("alice@example.org").status_code == 202


@pytest.mark.api(web={"user_rate": 1000, "address_rate": 2},
                 http={"trusted_proxies": ["127.0.0.4"]})
def test_behind_a_trusted_proxy_each_forwarded_client_has_a_rate(api_site: Site) -> None:
    with from_address(api_site, "127.0.0.4") as proxy, \
            from_address(api_site, "127.0.0.5") as stranger:
        def me(client: httpx.Client, forwarded: str) -> httpx.Response:
            return client.get(f"{API}/users/me", headers={"X-Forwarded-For": forwarded})

        assert [me(proxy, "192.0.2.1").status_code for _ in range(2)] == [401, 401]
        assert_limited(me(proxy, "192.0.2.1"), "from this address")
        assert me(proxy, "192.0.2.2").status_code == 401  # another client behind the proxy
        # a connection from elsewhere cannot pose as a forwarded client
        assert [me(stranger, "192.0.2.3").status_code for _ in range(2)] == [401, 401]
        assert_limited(me(stranger, "192.0.2.4"), "from this address")
