"""Web Push's receiving half in a real browser: the destinations page, the service worker.

Debian's chromium (headless, through Playwright) opens the destinations page,
whose "Get notifications in this browser" button registers the service worker
(``/sw.js``) and posts the browser's subscription to the API. Then the webpush
backend sends a notification to the stand-in push service
(:mod:`tests.integration.pushservice`), which decrypts it as a browser would;
the test hands that payload to the service worker through the DevTools
protocol (``ServiceWorker.deliverPushMessage``, what a push service's message
becomes inside the browser) and reads the notification the worker showed
with ``registration.getNotifications()``.

The click is the browser's own: chromium shows notifications through the
desktop's notification server over D-Bus (with the ``body`` and ``actions``
capabilities), here python-dbusmock's on a private ``dbus-daemon``, which
emits ``ActionInvoked(id, "default")`` as a notification server does when the
notification is clicked; chromium then dispatches ``notificationclick`` to the
worker. Chromium looks the clicked notification's profile up by name, which
Playwright's throwaway contexts do not have, so that test runs chromium with
a profile directory of its own (a persistent context).

What chromium cannot do here: reach its vendor's push service (Firebase Cloud
Messaging), so ``pushManager.subscribe`` and ``getSubscription`` are answered,
in the page only, with a subscription at the stand-in push service (an init
script; everything else the page does is real).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, sync_playwright

from notifier.backends.webpush import WebpushBackend, payload
from notifier.notification import Notification
from notifier.storage.push import PushSubscriptions, application_server_key, b64url
from tests.conftest import wait_for
from tests.integration.backends.peers_dbus import DbusSession
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.pushservice import Browser as PushBrowser
from tests.integration.pushservice import PushService
from tests.integration.web.pages.conftest import PagesSite, start_pages_site
from tests.integration.web.pages.test_pages_browser import (
    CHROMIUM,
    PHONE,
    WAIT_MS,
    Visits,
    _require,
    browser,
    visits_for,
)

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture, shared with the other browser tests

CONTACT = "mailto:push-admin@example.org"
#: what the page's pushManager.subscribe answers (the vendor's push service is out of reach)
SUBSCRIBE_STAND_IN = """
(() => {
  const json = %s;
  const key = Uint8Array.from(atob(json.keys.p256dh.replace(/-/g, "+").replace(/_/g, "/")
                              + "=".repeat((4 - json.keys.p256dh.length %% 4) %% 4)),
                              (c) => c.charCodeAt(0));
  function subscription() {
    const server = sessionStorage.getItem("subscribedWith");
    if (!server) {
      return null;
    }
    const options = {userVisibleOnly: true,
                     applicationServerKey: Uint8Array.from(server.split(","), Number).buffer};
    return {endpoint: json.endpoint, options, toJSON: () => json, getKey: () => key.buffer,
            unsubscribe: async () => { sessionStorage.removeItem("subscribedWith"); return true; }};
  }
  if (self.PushManager) {
    PushManager.prototype.subscribe = async function (options) {
      sessionStorage.setItem("subscribedWith",
                             Array.from(new Uint8Array(options.applicationServerKey)).join(","));
      return subscription();
    };
    PushManager.prototype.getSubscription = async function () {
      return subscription();
    };
  }
})();
"""
NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.getRegistration();
  const shown = registration ? await registration.getNotifications() : [];
  return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, icon: n.icon,
                            data: n.data, timestamp: n.timestamp,
                            requireInteraction: n.requireInteraction}));
}"""


@pytest.fixture
def push() -> Iterator[PushService]:
    service = PushService().start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def push_site(tmp_path: Path, smtp: SmtpPeer) -> Iterator[PagesSite]:
    site, stop = start_pages_site(tmp_path, smtp, {"webpush": {
        "contact": CONTACT, "allow_private_endpoints": True}})
    try:
        yield PagesSite(site, smtp)
    finally:
        stop()


def signed_in(site: PagesSite, context: BrowserContext, user: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(site.link(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.base}/")
    return page


def registration_id(session: CDPSession, scope: str) -> str:
    """The id of the service worker registration for ``scope`` with an activated worker,
    from the ServiceWorker domain's events."""
    registrations: dict[str, str] = {}
    active: set[str] = set()
    session.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.update(
        {r["registrationId"]: r["scopeURL"] for r in event["registrations"]
         if not r.get("isDeleted")}))
    session.on("ServiceWorker.workerVersionUpdated", lambda event: active.update(
        v["registrationId"] for v in event["versions"]
        if v["status"] == "activated" and v["runningStatus"] in ("running", "starting",
                                                                  "stopped")))
    session.send("ServiceWorker.enable")

    def found() -> str | None:
        session.send("ServiceWorker.enable")  # a call lets the events in (sync API)
        return next((rid for rid, url in registrations.items() if url == scope
                     and rid in active), None)

    return str(wait_for(found, f"an activated service worker for {scope}"))


def deliver(session: CDPSession, origin: str, rid: str, data: str) -> None:
    session.send("ServiceWorker.deliverPushMessage",
                 {"origin": origin, "registrationId": rid, "data": data})


def shown(page: Page, count: int) -> list[dict[str, Any]]:
    return wait_for(lambda: (lambda n: n if len(n) >= count else None)(
        page.evaluate(NOTIFICATIONS)), f"{count} notifications shown by the worker")


def alice_note(**kw: Any) -> Notification:
    values: dict[str, Any] = {
        "user": "alice", "destination": "webpush", "address": "alice",
        "msg_id": f"2026-{uuid.uuid4()}", "topic": "org.example.ci.build.failed",
        "app": "ci", "content": {"title": "ci: python-requests-2.32.3-1 failed to build",
                                 "body": "on x86_64, after 4 minutes"},
        "link": "https://ci.example.org/builds/4711", "icon": "https://ci.example.org/ci.png",
        "severity": "error", "timestamp": time.time()}
    return Notification(**{**values, **kw})


def test_subscribe_on_the_page_then_the_worker_shows_what_the_backend_sent(
        push_site: PagesSite, browser: Browser, push: PushService,
        request: pytest.FixtureRequest) -> None:
    base = push_site.base
    stand_in: PushBrowser = push.browser("alice")
    context = browser.new_context(color_scheme="light", viewport={"width": 1100, "height": 900})
    context.grant_permissions(["notifications", "clipboard-read", "clipboard-write"],
                              origin=base)
    context.add_init_script(SUBSCRIBE_STAND_IN % json.dumps(push.subscription(stand_in)))
    page = signed_in(push_site, context, "alice")
    visit = visits_for(request, page)

    page.goto(f"{base}/destinations")
    button = page.get_by_role("button", name="Get notifications in this browser")
    button.wait_for(state="visible")
    assert page.get_by_text("No browser gets your notifications yet.").is_visible()
    visit("destinations")
    # The feed address: selectable text, and with JavaScript a Copy button.
    feed = page.get_by_label("Atom feed address").input_value()
    assert "/feeds/alice.atom?token=" in feed
    page.get_by_role("button", name="Copy the Atom feed address").click()
    wait_for(lambda: page.locator("#feed-atom-copied").inner_text() == "Copied.",
             "the copy to be confirmed")
    assert page.evaluate("navigator.clipboard.readText()") == feed

    button.click()
    listed = page.locator("[data-endpoint]")
    try:
        listed.first.wait_for(state="visible")
    except Exception:
        print("status:", page.locator("#push-status").inner_text())
        raise
    assert listed.count() == 1
    assert listed.first.get_attribute("data-endpoint") == push.endpoint(stand_in)
    assert "Chrom" in listed.first.locator("h3").inner_text()  # "Chromium on Linux"
    # The page knows this browser in the list, and offers to renew its subscription.
    assert listed.first.get_by_text("this browser").is_visible()
    page.get_by_role("button", name="Renew notifications in this browser").wait_for()
    visit("subscribed")
    (sub,) = PushSubscriptions(push_site.store).list("alice")
    assert sub.endpoint == push.endpoint(stand_in)
    # The page subscribed with the key the API serves.
    server_key = PushSubscriptions(push_site.store).vapid_key()
    subscribed_with = bytes(int(b) for b in page.evaluate(
        "sessionStorage.getItem('subscribedWith')").split(","))
    assert b64url(subscribed_with) == application_server_key(server_key)

    # The worker is registered for the whole site, served as JavaScript.
    worker = page.evaluate("""async () => {
        const r = await navigator.serviceWorker.getRegistration();
        return r && {scope: r.scope, script: r.active && r.active.scriptURL};
    }""")
    assert worker == {"scope": f"{base}/", "script": f"{base}/sw.js"}

    # The backend sends a notification; the push service decrypts it as a browser would.
    backend = WebpushBackend(push_site.site.web.config)
    try:
        note = alice_note()
        backend.send(note)
    finally:
        backend.close()
    (arrived,) = wait_for(push.taken, "the push at the push service")
    assert not push.problems, push.problems
    assert json.loads(payload(note)) == arrived.payload

    session = context.new_cdp_session(page)
    rid = registration_id(session, f"{base}/")
    deliver(session, base, rid, json.dumps(arrived.payload))
    (notification,) = shown(page, 1)
    assert notification["title"] == "ci: python-requests-2.32.3-1 failed to build"
    assert notification["body"] == "on x86_64, after 4 minutes"
    assert notification["tag"] == note.msg_id
    assert notification["icon"] == "https://ci.example.org/ci.png"
    assert notification["data"]["link"] == "https://ci.example.org/builds/4711"
    assert notification["data"]["severity"] == "error"
    assert notification["requireInteraction"] is True
    assert abs(notification["timestamp"] - note.timestamp * 1000) < 1000

    # A push whose payload is not ours still shows something, leading to the inbox.
    deliver(session, base, rid, "not JSON")
    notes = shown(page, 2)
    assert len(notes) == 2, notes
    fallback = next(n for n in notes if n["tag"] == "notifier")
    assert fallback["title"] == "New notification"
    assert fallback["data"]["link"] == f"{base}/inbox"
    # The same message pushed again replaces its notification (same tag): one at a time,
    # each push waited for, so that the worker never has two to handle at once.
    deliver(session, base, rid, json.dumps({**arrived.payload, "body": "again"}))
    notes = wait_for(lambda: (lambda n: n if any(x["body"] == "again" for x in n) else None)(
        page.evaluate(NOTIFICATIONS)), "the notification replaced")
    assert sorted(n["tag"] for n in notes) == sorted([note.msg_id, "notifier"]), notes
    context.close()


def tab(page: Page, context: BrowserContext, url: str) -> Page | None:
    """The tab showing ``url``, if any (a call first: the sync API takes events in then)."""
    page.evaluate("0")
    return next((p for p in context.pages if p.url == url), None)


def subscribe_on_the_page(site: PagesSite, page: Page) -> None:
    """Press the page's button; wait until the page lists the browser."""
    page.goto(f"{site.base}/destinations")
    page.get_by_role("button", name="Get notifications in this browser").click()
    page.locator("[data-this-browser]").first.wait_for(state="visible")


def test_a_click_opens_the_link_or_focuses_the_tab_showing_it(
        push_site: PagesSite, push: PushService, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    _require(CHROMIUM, "Debian's chromium")
    desktop = DbusSession(tmp_path / "dbus", capabilities=["actions", "body", "body-markup",
                                                           "body-hyperlinks", "icon-static"])
    desktop.start()
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
                env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": desktop.address or ""},
                viewport=PHONE, color_scheme="dark")
            try:
                _clicks(push_site, push, context, desktop, request)
            finally:
                context.close()
    finally:
        desktop.stop()


def _clicks(site: PagesSite, push: PushService, context: BrowserContext,
            desktop: DbusSession, request: pytest.FixtureRequest) -> None:
    base = site.base
    context.grant_permissions(["notifications"], origin=base)
    context.add_init_script(SUBSCRIBE_STAND_IN % json.dumps(
        push.subscription(push.browser("alice"))))
    page = signed_in(site, context, "alice")
    visit = visits_for(request, page, PHONE["width"])
    subscribe_on_the_page(site, page)
    visit("subscribed-phone-dark")
    session = context.new_cdp_session(page)
    rid = registration_id(session, f"{base}/")

    def clicked(n: int) -> None:
        """The n-th notification the server got (1-based), clicked by the person."""
        desktop.emit("ActionInvoked", "us", n, "default")

    # A notification whose link no tab shows: the click opens it in a new tab.
    rules = alice_note(link=f"{base}/rules", content={"title": "Your rules", "body": "see"})
    deliver(session, base, rid, payload(rules).decode())
    (call,) = wait_for(lambda: desktop.notify_calls(), "chromium to show the notification")
    assert call["summary"] == "Your rules" and call["body"].endswith("see")
    assert "default" in call["actions"]
    before = len(context.pages)
    clicked(1)
    opened = wait_for(lambda: tab(page, context, f"{base}/rules"),
                      "the click to open the link in a new tab")
    assert len(context.pages) == before + 1
    opened.wait_for_load_state("load")
    assert opened.get_by_role("heading", level=1).inner_text() == "Rules"
    # The notification is gone once clicked.
    wait_for(lambda: page.evaluate(NOTIFICATIONS) == [], "the clicked notification to close")

    # One whose link a tab shows already (the destinations page): that tab is focused,
    # no new one opened. (Which tab has the focus is not observable here: Playwright
    # emulates focus for every page. A click's handler that opened a tab would have
    # done so before the next click's did: so the check waits for that one.)
    here = alice_note(link=page.url, content={"title": "Your destinations", "body": ""})
    deliver(session, base, rid, payload(here).decode())
    wait_for(lambda: len(desktop.notify_calls()) == 2, "the second notification")
    clicked(2)
    wait_for(lambda: page.evaluate(NOTIFICATIONS) == [], "the second notification to close")

    # A link that is not http(s) never opens: the inbox does.
    odd = alice_note(link="javascript:alert(1)", content={"title": "Odd", "body": ""})
    deliver(session, base, rid, payload(odd).decode())
    wait_for(lambda: len(desktop.notify_calls()) == 3, "the third notification")
    clicked(3)
    inbox = wait_for(lambda: tab(page, context, f"{base}/inbox"), "the click to open the inbox")
    inbox.wait_for_load_state("load")
    inbox.set_default_timeout(WAIT_MS)
    Visits(visit.test + "-tab", inbox, PHONE["width"])("inbox-opened-by-click")
    urls = [p.url for p in context.pages]
    assert urls.count(f"{base}/destinations") == 1, urls
    assert len(context.pages) == before + 2, urls
    assert not any(url.startswith("javascript:") for url in urls)


def test_a_browser_that_cannot_subscribe_is_told_why(
        push_site: PagesSite, browser: Browser) -> None:
    base = push_site.base
    # Notifications not allowed: the page says so, and subscribes nothing.
    context = browser.new_context()
    page = signed_in(push_site, context, "alice")
    page.goto(f"{base}/destinations")
    page.get_by_role("button", name="Get notifications in this browser").click()
    wait_for(lambda: "does not allow" in page.locator("#push-status").inner_text(),
             "the page to say notifications are not allowed")
    context.close()
    # Allowed, but the browser's push service refuses (chromium's own, unreachable or
    # refusing here): its reason is shown.
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=base)
    page = signed_in(push_site, context, "alice")
    page.goto(f"{base}/destinations")
    page.get_by_role("button", name="Get notifications in this browser").click()
    wait_for(lambda: "push service could not subscribe it" in page.locator(
        "#push-status").inner_text(), "the page to give the push service's reason")
    assert page.get_by_role("button", name="Get notifications in this browser").is_enabled()
    context.close()
    assert PushSubscriptions(push_site.store).list("alice") == []
