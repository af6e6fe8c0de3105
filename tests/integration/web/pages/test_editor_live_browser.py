"""The rule editor's live parts in a real browser (Debian's chromium through Playwright).

A person makes a rule over a stored history: only the chosen kind's list is
shown, package and application names complete as they are typed (picked
with the keyboard and with the mouse), and the preview follows the form
without the preview button, showing what the API's preview finds for the
same rule; a problem shows next to its field. Every step is screenshot and
checked with axe-core, as in :mod:`.test_pages_browser`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from notifier.meta import Describer
from tests.history_mix import OWNERS, history
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.web.pages.conftest import PagesSite, sign_in, start_pages_site
from tests.integration.web.pages.test_pages_browser import (  # noqa: F401 (a fixture)
    PHONE,
    WAIT_MS,
    browser,
    visits_for,
)

pytestmark = pytest.mark.integration

#: as tests.history_mix.preview_config describes the mix's messages
META = {"meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False,
                 "mappings": [{"topic": "org.example.*", "agent_path": "agent",
                               "usernames_paths": ["agent", "users"],
                               "packages_paths": ["packages"], "groups_paths": ["groups"],
                               "summary_path": "text", "link_path": "url"}]}}


@pytest.fixture
def history_site(tmp_path: Path, smtp: SmtpPeer) -> Iterator[PagesSite]:
    """The pages' site over 300 stored messages of the last 6 days (all in a 7-day preview)."""
    site, stop = start_pages_site(tmp_path, smtp, META)
    try:
        site.store.apply_ownership(OWNERS["packages"])
        describer = Describer(site.web.api.config)
        site.store.store_messages(history(300, time.time(), days=6), describer.describe)
        yield PagesSite(site, smtp)
    finally:
        stop()


def api_preview(pages: PagesSite, rule: dict[str, Any], user: str = "alice"
                ) -> dict[str, Any]:
    """What the API's preview finds for ``user``'s ``rule`` over 7 days (20 at most)."""
    client, csrf = sign_in(pages, user)
    with client:
        answer = client.post("/api/v1/rule-preview", headers={"X-CSRF-Token": csrf},
                             json={"rule": rule, "since": "7d", "limit": 20})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def shown_count(found: dict[str, Any]) -> str:
    total = found["total"]
    return f"{total}{'' if found['total_exact'] else '+'} message{'s' if total != 1 else ''}"


def expect_preview(page: Page, found: dict[str, Any]) -> None:
    """Wait until the page's preview shows ``found``: its count and its summaries, in order."""
    assert found["total"] > 0 and found["messages"]
    preview = page.locator("#preview")
    expect(preview.locator("[data-preview-total]")).to_contain_text(
        f"{shown_count(found)} since", timeout=WAIT_MS)
    expect(preview.locator(".preview-list > li > a")).to_have_text(
        [m["summary"] for m in found["messages"]], timeout=WAIT_MS)
    links = preview.locator(".preview-list > li > a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    assert links == [m["link"] for m in found["messages"]]


def pick(page: Page, field: str, typed: str, options: list[str], choice: str,
         keyboard: bool) -> None:
    """Type ``typed`` into the combobox ``field``, see ``options``, take ``choice``."""
    box = page.get_by_role("combobox", name=field, exact=True)
    box.press_sequentially(typed, delay=40)
    listbox = page.get_by_role("listbox", name=f"Suggestions: {field}")
    expect(listbox.get_by_role("option")).to_have_text(options, timeout=WAIT_MS)
    expect(box).to_have_attribute("aria-expanded", "true")
    if keyboard:
        for _ in range(options.index(choice) + 1):
            box.press("ArrowDown")
        active = box.get_attribute("aria-activedescendant")
        assert active and page.locator(f"#{active}").inner_text() == choice
        box.press("Enter")
    else:
        listbox.get_by_role("option", name=choice, exact=True).click()
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")


def test_creating_a_rule_with_the_preview(
        history_site: PagesSite, browser: Browser,  # noqa: F811 (the fixture)
        request: pytest.FixtureRequest) -> None:
    pages = history_site
    context = browser.new_context(color_scheme="light", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    visit = visits_for(request, page)
    base = pages.base
    previews: list[dict[str, Any]] = []  # the bodies the page posted to the API's preview

    def on_request(sent: Request) -> None:
        if sent.url.endswith("/api/v1/rule-preview"):
            assert sent.headers.get("x-csrf-token"), "the API wants the CSRF header"
            previews.append(json.loads(sent.post_data or "{}"))

    page.on("request", on_request)
    page.goto(pages.link("alice"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/rules")
    page.get_by_role("link", name="New rule").click()
    page.wait_for_url(f"{base}/rules/new")

    # The new rule tracks your own packages: its preview shows on arrival.
    own = api_preview(pages, {"track": {"kind": "artifacts-owned"}})
    expect_preview(page, own)
    expect(page.get_by_label("Whose packages", exact=True)).to_be_visible()
    for hidden in ("Packages", "Groups", "People", "Topic patterns"):
        expect(page.get_by_label(hidden, exact=True)).to_be_hidden()
    visit("editor-own-packages")

    page.get_by_label("Name", exact=True).fill("Kernel and compilers")
    page.get_by_label("These packages").check()
    expect(page.get_by_label("Whose packages", exact=True)).to_be_hidden()
    expect(page.get_by_label("Packages", exact=True)).to_be_visible()
    # No list yet: the API's problem shows next to the list, and no preview.
    expect(page.locator("#packages-errors")).to_contain_text("needs a list of packages",
                                                             timeout=WAIT_MS)
    expect(page.get_by_label("Packages", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#preview")).to_contain_text("correct the fields marked above")
    visit("editor-list-missing")

    # Names complete as they are typed: one taken with the keyboard, one with the mouse.
    typed_before = len(previews)
    pick(page, "Packages", "ker", ["kernel", "kernel-headers"], "kernel", keyboard=True)
    box = page.get_by_role("combobox", name="Packages", exact=True)
    expect(box).to_have_value("kernel, ")
    kernel = api_preview(pages, {"track": {"kind": "artifacts-followed",
                                           "packages": ["kernel"]}})
    expect_preview(page, kernel)  # the preview button was not pressed
    expect(page.locator("#packages-errors")).to_have_count(0)
    expect(box).not_to_have_attribute("aria-invalid", "true")
    # three letters typed and a pick: one preview asked for after the pause, not one a key
    assert len(previews) - typed_before <= 2, previews[typed_before:]
    box.press_sequentially("g", delay=40)
    listbox = page.get_by_role("listbox", name="Suggestions: Packages")
    expect(listbox.get_by_role("option")).to_have_text(["gcc"], timeout=WAIT_MS)
    visit("editor-completing")  # the suggestions open: still accessible
    listbox.get_by_role("option", name="gcc").click()
    expect(box).to_have_value("kernel, gcc, ")
    packages = {"kind": "artifacts-followed", "packages": ["kernel", "gcc"]}
    both = api_preview(pages, {"track": packages})
    expect_preview(page, both)
    assert both["total"] > kernel["total"]

    # A filter narrows it: an application picked from those the history has seen.
    pick(page, "Only from these applications", "k", ["koji"], "koji", keyboard=False)
    page.get_by_label("debug").check()
    filters = {"applications": ["koji"], "severities": ["debug", "info", "warning", "error"]}
    koji = api_preview(pages, {"track": packages, "filters": filters})
    expect_preview(page, koji)
    assert koji["total"] < both["total"]
    assert previews[-1]["rule"] == {"track": packages, "filters": {
        **filters, "excluded_applications": [], "my_actions": False, "topic": None}}
    # Asked twice at once (the button, pressed twice in one go): the first is cancelled.
    asked = len(previews)
    with page.expect_event("requestfailed", lambda failed: failed.url.endswith(
            "/api/v1/rule-preview")) as cancelled:
        page.get_by_role("button", name="Preview what it would have sent").evaluate(
            "button => { button.click(); button.click(); }")
    assert cancelled.value.failure == "net::ERR_ABORTED"
    page.wait_for_function("() => document.getElementById('preview').ariaBusy === null")
    assert len(previews) == asked + 2 and previews[-1] == previews[-2]
    assert page.url == f"{base}/rules/new"  # the button stays on the page
    expect_preview(page, koji)
    visit("editor-preview")

    page.get_by_label("email", exact=True).check()
    page.get_by_role("button", name="Save the rule").click()
    page.wait_for_url(f"{base}/rules")
    visit("rules")
    row = page.get_by_role("row").filter(has_text="Kernel and compilers")
    expect(row).to_contain_text("These packages: gcc, kernel")
    assert "Rule 'Kernel and compilers' is saved." in page.get_by_role("status").inner_text()
    stored = pages.store.get_rule("alice", "Kernel and compilers")
    assert stored is not None
    assert stored["track"] == {"kind": "artifacts-followed", "packages": ["gcc", "kernel"]}
    assert stored["filters"]["applications"] == ["koji"]
    assert stored["destinations"] == ["email"]

    # Back in the editor, the rule's own list is shown, its preview as saved.
    page.get_by_role("link", name="Kernel and compilers").click()
    expect(page.get_by_label("Packages", exact=True)).to_have_value("gcc, kernel")
    expect(page.get_by_label("Whose packages", exact=True)).to_be_hidden()
    expect_preview(page, koji)
    visit("rule-edit")
    context.close()


def test_the_live_editor_at_phone_width_in_dark_mode(
        history_site: PagesSite, browser: Browser,  # noqa: F811 (the fixture)
        request: pytest.FixtureRequest) -> None:
    pages = history_site
    context = browser.new_context(color_scheme="dark", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    visit = visits_for(request, page, PHONE["width"])
    page.goto(pages.link("bob"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{pages.base}/")
    page.goto(f"{pages.base}/rules/new")
    page.get_by_label("What these users do").check()
    pick(page, "People", "ca", ["carol"], "carol", keyboard=False)
    found = api_preview(pages, {"track": {"kind": "users-followed", "users": ["carol"]}},
                        "bob")
    expect_preview(page, found)
    page.get_by_role("combobox", name="People", exact=True).press_sequentially("z", delay=40)
    expect(page.get_by_role("option", name="zoë")).to_be_visible(timeout=WAIT_MS)
    visit("editor-completing")
    page.get_by_role("combobox", name="People", exact=True).press("Escape")
    expect(page.get_by_role("listbox", name="Suggestions: People")).to_be_hidden()
    visit("editor-preview")
    context.close()
