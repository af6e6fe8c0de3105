"""The destinations page over HTTP against the real server: an address added, confirmed
by the link aiosmtpd caught, digests set, problems next to their fields, and removed."""

from __future__ import annotations

import re

import pytest

from notifier.storage.destinations import Destinations
from tests.integration.web.pages.conftest import PagesSite, sign_in

pytestmark = pytest.mark.integration


def errors_of(text: str, field: str) -> str:
    found = re.search(rf'<ul class="errors" id="{field}-errors">(.*?)</ul>', text, re.S)
    return found.group(1) if found else ""


def test_add_confirm_set_digests_and_remove(pages_site: PagesSite) -> None:
    alice, csrf = sign_in(pages_site, "alice")
    bob, bob_csrf = sign_in(pages_site, "bob")
    store = Destinations(pages_site.store)
    with alice, bob:
        page = alice.get("/destinations")
        assert page.status_code == 200
        assert "alice@example.org" in page.text and "verified" in page.text
        assert re.search(r'id="feed-atom" type="text" readonly value="http://[^"]+/feeds/'
                         r'alice\.atom\?token=', page.text)
        assert 'id="add-kind-irc"' not in page.text  # no [irc] host here

        bad = alice.post("/destinations/add", data={"csrf_token": csrf, "kind": "email",
                                                   "address": "not an address"})
        assert bad.status_code == 422 and "is not an email address" in errors_of(
            bad.text, "add-address")
        added = alice.post("/destinations/add", data={"csrf_token": csrf, "kind": "email",
                                                     "address": "alice@work.example"})
        assert added.status_code == 303, added.text
        assert "confirmation link is on its way" in alice.get("/destinations").text
        [mail] = pages_site.smtp.received(10)
        assert mail.address == "alice@work.example"
        link = re.search(r"http://\S+/destinations/verify/\S+", mail.text)
        assert link, mail.text
        pending = [d for d in store.listing("alice") if d.address == "alice@work.example"]
        assert [d.state for d in pending] == ["pending"]
        ident = pending[0].id
        assert bob.post("/destinations/remove", data={"csrf_token": bob_csrf,
                                                      "id": ident}).status_code == 404
        assert alice.post(link.group(0)).status_code == 200
        assert [d.state for d in store.listing("alice") if d.id == ident] == ["verified"]

        refused = alice.post("/destinations/delivery", data={
            "csrf_token": csrf, "email-address": "alice@work.example",
            "email-digest": "digest", "email-every": "now and then", "email-max_items": "0",
            "rss-digest": "none"})
        assert refused.status_code == 422
        assert errors_of(refused.text, "email-every")
        assert "from 1 to" in errors_of(refused.text, "email-max_items")
        assert 'value="now and then"' in refused.text
        saved = alice.post("/destinations/delivery", data={
            "csrf_token": csrf, "email-address": "alice@work.example",
            "email-digest": "digest", "email-every": "1h", "email-max_items": "50"})
        assert saved.status_code == 303, saved.text
        assert store.delivery("alice") == {"email": {"address": "alice@work.example",
                                                     "digest": {"every": "1h",
                                                                "max_items": 50}}}
        shown = alice.get("/destinations").text
        assert '<option value="alice@work.example" selected>' in shown
        assert 'id="email-as-digest" name="email-digest" value="digest" checked' in shown

        assert alice.post("/destinations/remove", data={"csrf_token": csrf,
                                                        "id": ident}).status_code == 303
        assert [d.address for d in store.listing("alice")] == ["alice@example.org"]
        assert alice.post("/destinations/remove", data={"id": ident}).status_code == 403
