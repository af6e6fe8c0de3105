"""The live inbox in a real browser, against ``notifier serve`` fed through its own bus relay.

A message published on the bus reaches an open inbox tab without a reload:
the list gets the new item (the server's own markup, read out politely), the
unread count follows, and, once the person allowed it, the browser shows a
notification (the page's ``Notification`` constructor is wrapped by an init
script that records each notification the real constructor made). Muting a
rule from the inbox page stops what only it would send. Chromium is
Debian's, driven by Playwright; each page visited is saved as a screenshot
and checked with axe-core (see :mod:`.test_pages_browser`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from notifier.storage import Store
from notifier.storage.credentials import Credentials
from tests.conftest import free_port, wait_for
from tests.integration.rawbus import RawPublisher
from tests.integration.serveproc import ServeProcess, write_toml
from tests.integration.web.pages.test_pages_browser import WAIT_MS, browser, visits_for

pytestmark = pytest.mark.integration

__all__ = ["browser"]  # the fixture, shared with the other browser tests

#: records every notification the real constructor made, and keeps it (to click it)
RECORD_NOTIFICATIONS = """
(() => {
  window.__notifications = [];
  const Real = window.Notification;
  if (!Real) { return; }
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({title, body: (options || {}).body,
                                   tag: (options || {}).tag, shown: this});
    }
  }
  window.Notification = Recorded;
})();
"""


def topic_rule(user: str, name: str, pattern: str) -> dict[str, Any]:
    return {"user": user, "name": name, "track": {"kind": "topics", "patterns": [pattern]},
            "destinations": ["rss"]}


@dataclass
class World:
    serve: ServeProcess
    store: Store
    publisher: RawPublisher
    base: str

    def send(self, modname: str, topic: str, text: str) -> str:
        """Publish a message on the bus; its msg_id."""
        frames = self.publisher.builder.encode(modname, topic, {"log": text})
        self.publisher.send(*frames)
        return str(json.loads(frames[1])["msg_id"])

    def total(self, user: str) -> int:
        with self.store.engine.connect() as conn:
            from sqlalchemy import func, select

            from notifier.storage.schema import inbox
            return conn.execute(select(func.count()).where(inbox.c.user == user)).scalar() or 0

    def sign_in(self, page: Page, user: str) -> None:
        page.goto(f"{self.base}/signin/link/{Credentials(self.store).create_link(user)}")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.base}/")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    http = f"127.0.0.1:{free_port()}"
    inbound = f"tcp://127.0.0.1:{free_port()}"
    url = f"sqlite:///{tmp_path / 'notifier.db'}"
    config = write_toml(tmp_path / "notifier.toml", {
        "database_url": url,
        "bus": {"relay_inbound": inbound, "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": http, "base_url": f"http://{http}"},
        "email": {"maildir": str(tmp_path / "Maildir")}})
    store = Store(url)
    store.import_users([{"name": n, "emails": [f"{n}@example.org"]} for n in ("alice", "bob")])
    store.upsert_rules([topic_rule("alice", "builds", "*.buildsys.*"),
                        topic_rule("alice", "comments", "*.comment.*"),
                        topic_rule("bob", "probe", "*.probe.*")])
    serve = ServeProcess(config, http, tmp_path / "serve.log").start()
    publisher = RawPublisher(inbound)
    world = World(serve, store, publisher, f"http://{http}")
    try:
        probes: list[str] = []

        def flowing() -> bool:  # ZeroMQ subscriptions take a moment: probe until one lands
            if world.total("bob"):
                return True
            probes.append(world.send("probe", "probe.ping", f"probe {len(probes)}"))
            return False

        wait_for(flowing, "a probe to reach bob's inbox", context=serve.log, interval=0.2)
        yield world
    finally:
        publisher.close()
        serve.ensure_stopped()
        store.close()


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(color_scheme="light", viewport={"width": 1200, "height": 900})
    context.add_init_script(RECORD_NOTIFICATIONS)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    return context


def shown(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(  # type: ignore[no-any-return]
        "window.__notifications.map(({title, body, tag}) => ({title, body, tag}))")


def item_titles(page: Page) -> list[str]:
    return page.locator("#inbox > li h2.title").all_inner_texts()


def test_a_message_on_the_bus_arrives_live_and_as_a_browser_notification(
        world: World, browser: Browser, request: pytest.FixtureRequest) -> None:
    context = new_context(browser)
    page = context.new_page()
    visit = visits_for(request, page)
    world.sign_in(page, "alice")
    page.goto(f"{world.base}/inbox")
    expect(page.get_by_text("No notifications yet.")).to_be_visible()
    expect(page.locator("[data-unread]")).to_be_hidden()
    # The person allows browser notifications.
    button = page.get_by_role("button", name="Show browser notifications")
    expect(button).to_be_visible()
    visit("inbox-empty")
    context.grant_permissions(["notifications"], origin=world.base)
    button.click()
    expect(page.locator("[data-notify-state]")).to_have_text(
        "Browser notifications are on while a page of this site is open.")
    expect(button).to_be_hidden()
    page.evaluate("window.__samePage = true")  # gone if the page reloads

    world.send("koji", "buildsys.build.failed", "Build of kernel failed")
    first = page.locator("#inbox > li").first
    expect(first).to_contain_text("Build of kernel failed")
    expect(first).to_have_class("item unread severity-info arrived")
    expect(first.get_by_role("link", name="Why did I get this? (Build of kernel failed)")
           ).to_be_visible()
    expect(first.get_by_role("button", name="Mark read Build of kernel failed")).to_be_visible()
    assert first.locator("input[name='csrf_token']").count() >= 2
    expect(page.locator("[data-unread-count]")).to_have_text("1")
    expect(page.locator("#counts")).to_have_text("1 unread of 1")
    expect(page.locator("[data-badge-count]")).to_have_text("1")
    expect(page.locator("[data-unread]")).to_be_visible()
    expect(page.locator("[data-live-announce]")).to_have_text(
        "New notification: Build of kernel failed")
    expect(page.get_by_text("No notifications yet.")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark all read")).to_be_visible()
    assert page.evaluate("window.__samePage") is True
    item_id = int((first.get_attribute("id") or "n0")[1:])
    wait_for(lambda: shown(page), "the browser notification")
    assert shown(page) == [{"title": "Build of kernel failed",
                            "body": "koji · org.fedoraproject.dev.koji.buildsys.build.failed",
                            "tag": f"notifier-{item_id}"}]
    visit("inbox-live")

    # Clicking the notification opens its link (this message has none: why it came).
    with context.expect_page() as opened:
        page.evaluate("window.__notifications[0].shown.dispatchEvent(new Event('click'))")
    why = opened.value
    why.wait_for_load_state()
    assert why.url == f"{world.base}/inbox/{item_id}/why"
    expect(why.get_by_role("heading", level=1)).to_contain_text("Why")
    why.close()

    # A second one: on top, newest first; the marking form reads everything shown.
    world.send("koji", "buildsys.build.done", "Build of bash done")
    expect(page.locator("#inbox > li")).to_have_count(2)
    assert item_titles(page)[0].endswith("Build of bash done")
    expect(page.locator("[data-badge-count]")).to_have_text("2")
    up_to = page.locator("[data-read-all] input[name='up_to']").input_value()
    assert int(up_to) == int((page.locator("#inbox > li").first.get_attribute("id") or "")[1:])

    # Any signed-in page: the badge follows, and the browser still notifies.
    page.get_by_role("link", name="Rules").click()
    page.wait_for_url(f"{world.base}/rules")
    visit("rules")
    world.send("koji", "buildsys.build.failed", "Build of glibc failed")
    expect(page.locator("[data-badge-count]")).to_have_text("3")
    expect(page.locator("[data-live-announce]")).to_have_text(
        "New notification: Build of glibc failed")
    wait_for(lambda: len(shown(page)) == 1, "the browser notification on the rules page")
    assert shown(page)[0]["title"] == "Build of glibc failed"

    # Mark all read, without JavaScript's help: the server's form.
    page.goto(f"{world.base}/inbox")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("[data-unread]")).to_be_hidden()
    expect(page.locator("#counts")).to_have_text("0 unread of 3")
    visit("inbox-read")
    context.close()


def test_muting_a_rule_from_the_inbox_page(
        world: World, browser: Browser, request: pytest.FixtureRequest) -> None:
    context = new_context(browser)
    page = context.new_page()
    visit = visits_for(request, page)
    world.sign_in(page, "alice")
    world.send("koji", "buildsys.build.failed", "Build of kernel failed")
    wait_for(lambda: world.total("alice") == 1, "alice's first notification",
             context=world.serve.log)
    page.goto(f"{world.base}/inbox")
    item = page.locator("#inbox > li").first
    item.get_by_text("Mute or snooze").click()
    visit("mute-open")
    item.get_by_role("button", name="Mute rule builds").click()
    page.wait_for_url(f"{world.base}/inbox")
    expect(page.get_by_role("status")).to_contain_text("Rule 'builds' is muted")
    visit("muted")

    # Only the muted rule matches the first; the second comes through another rule, after it.
    world.send("koji", "buildsys.build.failed", "Build of bash failed")
    world.send("pagure", "comment.added", "New comment on kernel")
    expect(page.locator("#inbox > li").first).to_contain_text("New comment on kernel")
    assert [t.split("\n")[-1].replace("Unread: ", "") for t in item_titles(page)] == [
        "New comment on kernel", "Build of kernel failed"]
    assert world.total("alice") == 2
    expect(page.locator("[data-badge-count]")).to_have_text("2")
    visit("after-mute")
    context.close()
