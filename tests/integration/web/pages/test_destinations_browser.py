"""An email address verified in a real browser, through the link of the mail aiosmtpd caught."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from notifier.storage.destinations import Destinations
from tests.integration.web.pages.conftest import PagesSite
from tests.integration.web.pages.test_pages_browser import (  # noqa: F401 (a fixture)
    browser,
    visits_for,
)

pytestmark = pytest.mark.integration


def test_verifying_an_email_address_by_the_link_in_its_mail(
        pages_site: PagesSite, browser: Browser, request: pytest.FixtureRequest  # noqa: F811
        ) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    visit = visits_for(request, page)
    base = pages_site.base
    page.goto(pages_site.link("alice"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/destinations")
    page.get_by_label("Email address", exact=True).check()
    page.get_by_label("Address, nick or Matrix id").fill("alice@work.example")
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_url(f"{base}/destinations")
    expect(page.get_by_text("confirmation link is on its way")).to_be_visible()
    visit("added")
    pending = [d for d in Destinations(pages_site.store).listing("alice")
               if d.address == "alice@work.example"]
    assert [d.state for d in pending] == ["pending"]

    [mail] = pages_site.smtp.received(10)
    assert mail.address == "alice@work.example"
    link = re.search(r"http://\S+/destinations/verify/\S+", mail.text)
    assert link, mail.text
    page.goto(link.group(0))
    expect(page.get_by_text("alice@work.example")).to_be_visible()
    visit("confirm")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("is confirmed")).to_be_visible()
    visit("confirmed")
    assert [d.state for d in Destinations(pages_site.store).listing("alice")
            if d.id == pending[0].id] == ["verified"]

    # The link works once.
    page.goto(link.group(0))
    expect(page.get_by_text("has been used or has expired")).to_be_visible()
    page.goto(f"{base}/destinations")
    row = page.get_by_role("listitem").filter(has_text="alice@work.example")
    expect(row).to_contain_text("verified")
    visit("destinations")
    context.close()
