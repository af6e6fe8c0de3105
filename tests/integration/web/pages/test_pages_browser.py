"""The web app in a real browser: Debian's chromium, headless, driven by Playwright.

Every page a test visits is saved as a screenshot under
``test-artifacts/screenshots/`` (named by test, step and page), and checked
with axe-core (from the npm registry, installed by ``dev/setup``): no serious
or critical violation. One test is a person at a desktop, in light mode;
the other walks every page at phone width (375 px), in dark mode, and checks
that nothing is wider than the screen. Without chromium or axe-core the tests
are skipped, and fail under CI=true.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from notifier.storage.credentials import TOKEN_PREFIX
from tests.conftest import IN_CI, ROOT
from tests.integration.web.pages.conftest import PagesSite, topic_rule

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: where the screenshots go (the README names it)
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
#: milliseconds the browser waits for a page or an element
WAIT_MS = 30_000
PHONE = {"width": 375, "height": 740}


def _require(path: Path, what: str) -> None:
    if not path.exists():
        message = f"{path} is not installed ({what}; dev/setup installs it)"
        if IN_CI:
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless."""
    _require(CHROMIUM, "Debian's chromium")
    _require(AXE, "axe-core, from package.json")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Visits:
    """Screenshots and accessibility checks of each page a test visits."""

    test: str
    page: Page
    width: int | None = None
    shots: list[Path] = field(default_factory=list)

    def __call__(self, name: str) -> None:
        """Check the page the browser shows now, and save its screenshot as ``name``."""
        self.page.wait_for_load_state("load")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test}-{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        self.page.add_script_tag(path=str(AXE))
        violations: list[dict[str, Any]] = self.page.evaluate("""async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({id: v.id, impact: v.impact,
                help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}));
        }""")
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe-core on {name} ({self.page.url}): {bad}"
        if self.width is not None:
            wide = self.page.evaluate("document.documentElement.scrollWidth")
            assert wide <= self.width, f"{name} is {wide} px wide at {self.width} px"


def visits_for(request: pytest.FixtureRequest, page: Page, width: int | None = None) -> Visits:
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    for old in SCREENSHOTS.glob(f"{test}-*.png"):
        old.unlink()
    page.set_default_timeout(WAIT_MS)
    return Visits(test, page, width)


def test_sign_in_by_link_then_make_a_rule_in_the_editor(
        pages_site: PagesSite, browser: Browser, request: pytest.FixtureRequest) -> None:
    context = browser.new_context(color_scheme="light", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    visit = visits_for(request, page)
    base = pages_site.base

    page.goto(f"{base}/inbox")  # not signed in: to the sign-in page
    page.wait_for_url(f"{base}/signin")
    visit("signin")
    page.get_by_label("Your email address").fill("alice@example.org")
    page.get_by_role("button", name="Send me a sign-in link").click()
    page.wait_for_url(f"{base}/signin")
    assert "a sign-in link is on its way" in page.get_by_role("status").inner_text()
    visit("link-sent")
    mails = pages_site.smtp.received(10)
    assert [m.address for m in mails] == ["alice@example.org"]
    link = re.search(r"http://\S+/signin/link/\S+", mails[0].text)
    assert link, mails[0].text
    page.goto(link.group(0))
    visit("link")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/inbox")  # the page asked for before signing in
    assert page.get_by_role("heading", level=1).inner_text() == "Inbox"
    visit("inbox-empty")
    page.goto(f"{base}/")
    assert "Signed in as alice" in page.get_by_role("main").inner_text()
    visit("start")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Rules").click()
    page.wait_for_url(f"{base}/rules")
    visit("rules-empty")
    page.get_by_role("link", name="New rule").click()
    page.wait_for_url(f"{base}/rules/new")
    visit("rule-new")
    page.get_by_label("Name", exact=True).fill("My builds")
    page.get_by_label("Messages whose topic matches these patterns").check()
    page.get_by_label("Topic patterns").fill(
        "org.example.*.buildsys.build\n*.tag")
    page.get_by_role("button", name="Save the rule").click()  # no destination chosen
    page.wait_for_url(f"{base}/rules/new")
    assert page.get_by_role("alert").is_visible()
    assert "at least one value" in page.locator("#destinations-errors").inner_text()
    visit("rule-errors")
    assert page.get_by_label("Name", exact=True).input_value() == "My builds"
    page.get_by_label("email", exact=True).check()
    page.get_by_label("debug").check()
    page.get_by_label("Preview over the last").select_option("30d")
    page.get_by_role("button", name="Preview what it would have sent").click()
    expect(page.locator("#preview")).to_contain_text("No stored message since", timeout=WAIT_MS)
    assert page.get_by_label("email", exact=True).is_checked()
    visit("rule-preview")
    page.get_by_role("button", name="Save the rule").click()
    page.wait_for_url(f"{base}/rules")
    visit("rules")
    row = page.get_by_role("row").filter(has_text="My builds")
    assert "enabled" in row.inner_text() and "email" in row.inner_text()
    assert "Rule 'My builds' is saved." in page.get_by_role("status").inner_text()
    stored = pages_site.store.get_rule("alice", "My builds")
    assert stored is not None
    assert stored["track"] == {"kind": "topics",
                               "patterns": ["*.tag", "org.example.*.buildsys.build"]}
    assert stored["filters"]["severities"] == ["debug", "info", "warning", "error"]
    context.close()


def test_every_page_at_phone_width_in_dark_mode(
        pages_site: PagesSite, browser: Browser, request: pytest.FixtureRequest) -> None:
    pages_site.store.upsert_rules([topic_rule("carol", "builds", "*.build"),
                                   topic_rule("alice", "alices", "*.x")])
    pages_site.notify("carol", 30, "builds")
    context = browser.new_context(color_scheme="dark", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    visit = visits_for(request, page, PHONE["width"])
    base = pages_site.base

    page.goto(f"{base}/")
    visit("home")
    page.goto(pages_site.link("carol"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    visit("start")
    page.goto(f"{base}/inbox")
    visit("inbox")
    assert page.locator("[data-unread-count]").inner_text() == "30"
    page.get_by_role("button", name="Mark read Build 29 of builds").click()
    page.wait_for_url(f"{base}/inbox")
    assert page.locator("[data-unread-count]").inner_text() == "29"
    page.get_by_role("link", name="Older").click()
    visit("inbox-older")
    page.goto(f"{base}/inbox")
    page.get_by_role("link", name="Why did I get this? (Build 29 of builds)").click()
    visit("why")
    page.get_by_label("Snooze rule builds for").select_option("1d")
    page.get_by_role("button", name="Snooze rule builds").click()
    assert "snoozed until" in page.get_by_role("status").inner_text()
    visit("why-snoozed")
    page.goto(f"{base}/rules")
    visit("rules")
    page.get_by_role("link", name="builds").click()
    visit("rule-edit")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Destinations").click()
    page.wait_for_url(f"{base}/destinations")
    assert "/feeds/carol.atom?token=" in page.get_by_label("Atom feed address").input_value()
    visit("destinations")
    page.goto(f"{base}/tokens")
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_role("button", name="Create the token").click()
    assert page.get_by_label("Token (read)").input_value().startswith(TOKEN_PREFIX)
    visit("token-created")
    page.goto(f"{base}/admin")
    visit("admin")
    page.get_by_role("button", name="Disable rule alices of alice").click()
    page.wait_for_url(f"{base}/admin")
    visit("admin-disabled")
    assert pages_site.store.get_rule("alice", "alices")["disabled"] is True
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/signin")
    visit("signed-out")
    context.close()
