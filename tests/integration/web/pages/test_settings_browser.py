"""The settings page in a real browser (Debian's chromium), at phone width in dark mode:
the browser's time zone filled in, quiet hours refused next to the time zone field, then
saved; each page screenshot and checked with axe-core (see :mod:`.test_pages_browser`)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from notifier.storage.destinations import Destinations
from tests.integration.web.pages.conftest import PagesSite
from tests.integration.web.pages.test_pages_browser import PHONE, browser, visits_for

pytestmark = pytest.mark.integration

__all__ = ["browser"]  # the fixture


def test_quiet_hours_on_the_settings_page(pages_site: PagesSite, browser: Browser,
                                          request: pytest.FixtureRequest) -> None:
    context = browser.new_context(color_scheme="dark", viewport=PHONE, timezone_id="Asia/Tokyo")
    page = context.new_page()
    visit = visits_for(request, page, width=PHONE["width"])
    base = pages_site.base
    page.goto(pages_site.link("bob"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/settings")
    # The script fills in the browser's own zone.
    page.wait_for_function("document.getElementById('quiet-timezone').value !== ''")
    assert page.get_by_label("Time zone").input_value() == "Asia/Tokyo"
    visit("settings")
    page.get_by_label("From").fill("22:00")
    page.get_by_label("Until").fill("07:00")
    page.get_by_label("Time zone").fill("Europe/Praha")
    page.get_by_role("button", name="Save quiet hours").click()
    page.wait_for_load_state("load")
    zone = page.get_by_label("Time zone")
    assert zone.get_attribute("aria-invalid") == "true"
    problem = page.locator("#quiet-timezone-errors")
    assert "is not a known time zone" in problem.inner_text()
    assert "quiet-timezone-errors" in (zone.get_attribute("aria-describedby") or "")
    visit("settings-refused")

    zone.fill("Europe/Prague")
    page.get_by_role("button", name="Save quiet hours").click()
    page.wait_for_url(f"{base}/settings")
    shown = page.get_by_role("main").inner_text()
    assert "Your quiet hours are saved." in shown
    assert "to 07:00 (Europe/Prague)" in shown or "until 07:00 (Europe/Prague)" in shown
    visit("settings-saved")
    assert Destinations(pages_site.store).delivery("bob") == {
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}}
    context.close()
