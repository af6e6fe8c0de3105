"""``POST /api/v1/signin/email``: a sign-in link through a real SMTP server (aiosmtpd) for a
known address; nothing for an unknown one; the same answer either way; a limit per address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.web.conftest import Site

from .conftest import API, start_api_site

pytestmark = pytest.mark.integration

LINK = re.compile(r"(http://\S+/signin/link/[A-Za-z0-9_-]+)")


@pytest.fixture
def mail_site(tmp_path: Path, smtp: SmtpPeer) -> Iterator[Site]:
    site, stop = start_api_site(tmp_path, {**smtp.config(),
                                           "web": {"signin_links_per_hour": 2}})
    try:
        yield site
    finally:
        stop()


class Inbox:
    """Every mail the SMTP server accepted, gathered as the test waits."""

    def __init__(self, smtp: SmtpPeer):
        self.smtp = smtp
        self.mails: list[tuple[str, str]] = []

    def wait(self, address: str, count: int) -> list[str]:
        """The texts of the first ``count`` mails to ``address``, once they are here."""
        def arrived() -> list[str]:
            self.mails += [(m.address, m.text) for m in self.smtp.received(0.2)]
            texts = self.to(address)
            return texts if len(texts) >= count else []

        return wait_for(arrived, f"{count} mail(s) to {address}", interval=0)[:count]

    def to(self, address: str) -> list[str]:
        return [text for to, text in self.mails if to == address]


def ask(site: Site, address: str) -> tuple[int, str, dict[str, object]]:
    with site.client() as client:
        answer = client.post(f"{API}/signin/email", json={"address": address})
    return answer.status_code, answer.headers["content-type"], answer.json()


def test_a_known_address_gets_a_link_that_signs_in(mail_site: Site, smtp: SmtpPeer) -> None:
    assert ask(mail_site, "alice@example.org")[0] == 202
    (text,) = Inbox(smtp).wait("alice@example.org", 1)
    assert text.startswith("Sign in to notifier\n") and "15 minutes" in text
    (url,) = LINK.findall(text)
    assert url.startswith(mail_site.base + "/signin/link/")
    with mail_site.client() as browser:
        assert browser.get(url).status_code == 200
        assert browser.post(url).status_code == 303
        assert browser.get(f"{API}/users/me").json()["name"] == "alice"


def test_known_and_unknown_addresses_get_the_same_answer_and_only_one_a_mail(
        mail_site: Site, smtp: SmtpPeer) -> None:
    unknown = ask(mail_site, "nobody-here@example.org")
    known = ask(mail_site, "bob@example.org")
    assert unknown == known
    assert known[:2] == (202, "application/json")
    inbox = Inbox(smtp)
    inbox.wait("bob@example.org", 1)  # the positive control: bob's link arrived
    assert inbox.to("nobody-here@example.org") == []
    assert [address for address, _ in inbox.mails] == ["bob@example.org"]


def test_links_are_limited_per_address(mail_site: Site, smtp: SmtpPeer) -> None:
    answers = [ask(mail_site, address) for address in (
        "alice@example.org", "Alice@Example.org", "ALICE@EXAMPLE.ORG", "alice@example.org")]
    assert all(a == answers[0] for a in answers)  # the same answer, over the limit or not
    inbox = Inbox(smtp)
    first = inbox.wait("alice@example.org", 2)
    assert ask(mail_site, "carol@example.org")[0] == 202
    inbox.wait("carol@example.org", 1)  # sent after alice's: everything before is in
    assert inbox.to("alice@example.org") == first  # two an hour, however it is spelt
    assert {to for to, _ in inbox.mails} == {"alice@example.org", "carol@example.org"}


def test_the_request_is_checked(mail_site: Site) -> None:
    with mail_site.client() as client:
        bad = client.post(f"{API}/signin/email", json={"address": "not an address"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "address"


@pytest.mark.api(web={"email_signin": False})
def test_no_links_when_sign_in_by_email_is_off(api_site: Site) -> None:
    assert ask(api_site, "alice@example.org")[0] == 404
