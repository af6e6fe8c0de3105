"""``<notifier-inbox>`` on pages of other origins, in Debian's chromium (Playwright).

The host pages come from small HTTP servers of their own on loopback, with a
strict Content-Security-Policy of their own (scripts from themselves and from
notifier, no inline style) and a stylesheet that colours every button, list
and ``.panel``. notifier's ``[http] allowed_origins`` lists two of them:
``http://127.0.0.1:<port>`` (the same site as notifier, so the browser sends
the session cookie) and ``http://localhost:<port>`` (another site: the cookie
stays home, the widget needs a token). A third, not listed, gets nothing.
Each page is saved as a screenshot under ``test-artifacts/screenshots/`` and
checked with axe-core with the drop-down open.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from notifier.config import config_from_dict
from notifier.storage import Store
from notifier.storage.credentials import Credentials
from notifier.storage.inbox import Inbox
from tests.conftest import ROOT, free_port
from tests.integration.web.conftest import run_site
from tests.integration.web.pages.conftest import USERS, PagesSite
from tests.integration.web.pages.test_pages_browser import browser

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture, shared with the other browser tests

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT_MS = 30_000
HOST_RED = "rgb(170, 0, 0)"
HOST_CSS = f"""
body {{ color: rgb(0, 100, 0); font-family: serif; background: rgb(255, 255, 240); }}
button {{ color: {HOST_RED}; background: rgb(255, 255, 255); font-size: 22px; }}
ul, li {{ border-left: 0; font-weight: 400; }}
.panel {{ position: static; border: 2px dashed rgb(0, 0, 160); }}
.badge {{ background: rgb(255, 255, 255); }}
header {{ display: flex; justify-content: space-between; align-items: center; }}
"""


def host_page(base: str, attributes: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>A host site</title>
<link rel="stylesheet" href="/host.css">
<script src="{base}/widget.js" defer></script>
</head><body>
<header><p>A host site</p><notifier-inbox{attributes}></notifier-inbox></header>
<main><h1>Host content</h1>
<button type="button" id="host-button">The host's button</button>
<ul id="host-list"><li class="unread">The host's list item</li></ul>
<div class="panel" id="host-panel">The host's panel</div>
</main></body></html>"""


@dataclass
class Host:
    """A host site: its origin, and the pages it serves (path -> HTML)."""

    origin: str
    pages: dict[str, str]


def serve_host(port: int, name: str, pages: dict[str, str], base: str
               ) -> tuple[http.server.ThreadingHTTPServer, Host]:
    """A host site on ``127.0.0.1:port``, known to the browser as ``http://name:port``."""
    host = Host(f"http://{name}:{port}", pages)
    csp = (f"default-src 'none'; script-src 'self' {base}; connect-src {base}; "
           "style-src 'self'; img-src 'self'")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/host.css":
                body, kind = HOST_CSS.encode(), "text/css"
            elif path == "/axe.js":  # served by the host itself: its CSP allows 'self'
                body, kind = AXE.read_bytes(), "text/javascript"
            elif path in host.pages:
                body, kind = host.pages[path].encode(), "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name=f"host-{port}").start()
    return server, host


@dataclass
class Sites:
    notifier: PagesSite
    #: listed in allowed_origins, the same site as notifier (the cookie goes along)
    same_site: Host
    #: listed in allowed_origins, another site (localhost): only a token works
    other_site: Host
    #: not listed
    refused: Host


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    ports = [free_port() for _ in range(4)]
    base = f"http://127.0.0.1:{ports[0]}"
    origins = [f"http://127.0.0.1:{ports[1]}", f"http://localhost:{ports[2]}"]
    config = config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "http": {"listen": f"127.0.0.1:{ports[0]}", "base_url": base,
                 "allowed_origins": origins},
        "email": {"maildir": str(tmp_path / "Maildir")}}, str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": name, "emails": [f"{name}@example.org"], "ircnicks": [],
                         "groups": []} for name in USERS])
    site, stop = run_site(config, store, base=base)
    servers = []
    try:
        hosts = []
        for port, name in zip(ports[1:], ("127.0.0.1", "localhost", "127.0.0.1"), strict=True):
            server, host = serve_host(port, name, {"/": host_page(base)}, base)
            servers.append(server)
            hosts.append(host)
        yield Sites(PagesSite(site, None), *hosts)  # type: ignore[arg-type]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        stop()


@dataclass
class Shots:
    test: str
    page: Page
    n: int = 0

    def __call__(self, name: str, axe: bool = True) -> None:
        """Save a screenshot of the page as ``name``; with ``axe``, no serious or critical
        axe-core violation (axe-core looks inside the widget's open shadow root)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.n += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.test}-{self.n:02d}-{name}.png"),
                             full_page=True)
        if not axe:
            return
        if not self.page.evaluate("typeof axe !== 'undefined'"):
            self.page.add_script_tag(url="/axe.js")
        violations: list[dict[str, Any]] = self.page.evaluate("""async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({id: v.id, impact: v.impact,
                help: v.help, nodes: v.nodes.map(n => JSON.stringify(n.target))}));
        }""")
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe-core on {name} ({self.page.url}): {bad}"


def shots_for(request: pytest.FixtureRequest, page: Page) -> Shots:
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    for old in SCREENSHOTS.glob(f"{test}-*.png"):
        old.unlink()
    page.set_default_timeout(WAIT_MS)
    return Shots(test, page)


def sign_in(page: Page, sites: Sites, user: str) -> None:
    """Sign ``user`` in on notifier itself, through a sign-in link."""
    page.goto(sites.notifier.link(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{sites.notifier.base}/")


def widget_state(page: Page, state: str) -> None:
    page.locator(f"notifier-inbox[data-state='{state}']").wait_for(state="attached")


def computed(page: Page, selector: str, prop: str) -> str:
    """A CSS property of an element, inside the widget's shadow root when ``selector``
    starts with ``widget:``."""
    return page.evaluate("""([selector, prop]) => {
        const inWidget = selector.startsWith("widget:");
        const root = inWidget ? document.querySelector("notifier-inbox").shadowRoot : document;
        const node = root.querySelector(inWidget ? selector.slice(7) : selector);
        return getComputedStyle(node)[prop];
    }""", [selector, prop])


@dataclass
class Answer:
    url: str
    status: int
    headers: dict[str, str]


class Answers:
    """Every answer a page gets from notifier's API, read through the DevTools protocol,
    which sees those the browser then withholds from the page (CORS)."""

    def __init__(self, page: Page, base: str):
        self.page = page
        self.base = base
        self.urls: dict[str, str] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        # the two events of a request come in either order
        cdp.on("Network.requestWillBeSent", lambda event: self.urls.setdefault(
            event["requestId"], event["request"]["url"]))
        cdp.on("Network.responseReceivedExtraInfo", lambda event: self.extra.setdefault(
            event["requestId"], event))

    def to(self, part: str) -> list[Answer]:
        """The answers so far to requests whose address contains ``part``."""
        return [Answer(url, self.extra[key]["statusCode"],
                       {k.lower(): v for k, v in self.extra[key]["headers"].items()})
                for key, url in list(self.urls.items())
                if url.startswith(f"{self.base}/api/") and part in url and key in self.extra]

    def wait(self, part: str) -> list[Answer]:
        """The answers to requests whose address contains ``part``, once there is one."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while not (found := self.to(part)):
            assert time.monotonic() < deadline, f"no answer to {part} came; {self.urls}"
            self.page.wait_for_timeout(50)  # Playwright delivers the events meanwhile
        return found


def new_page(browser: Browser, **kw: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 800}, **kw})
    return context, context.new_page()


def test_the_widget_on_a_page_from_another_origin_shows_the_inbox_live(
        sites: Sites, browser: Browser, request: pytest.FixtureRequest) -> None:
    notifier = sites.notifier
    notifier.notify("alice", 3)
    notifier.notify("bob", 2)  # someone else's: never shown to alice
    inbox = Inbox(notifier.store)
    oldest = inbox.page("alice").items[-1]
    inbox.mark("alice", [oldest.id])
    context, page = new_page(browser, color_scheme="light")
    shots = shots_for(request, page)
    sign_in(page, sites, "alice")
    answers = Answers(page, notifier.base)

    page.goto(f"{sites.same_site.origin}/")
    widget_state(page, "ready")
    toggle = page.get_by_role("button", name=re.compile("^Notifications"))
    expect(toggle).to_have_accessible_name("Notifications 2 unread")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    panel = page.locator("notifier-inbox .panel")
    expect(panel).to_be_hidden()
    listed = answers.wait("/api/v1/notifications?")
    assert listed[0].status == 200
    assert listed[0].headers["access-control-allow-origin"] == sites.same_site.origin
    assert listed[0].headers["access-control-allow-credentials"] == "true"
    shots("closed")

    # the keyboard opens and closes it
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(panel).to_be_visible()
    items = page.locator("notifier-inbox li")
    expect(items).to_have_count(3)
    titles = page.locator("notifier-inbox li .title")
    expect(titles).to_have_text(["Build 2 of builds", "Build 1 of builds", "Build 0 of builds"])
    first = page.get_by_role("link", name="Build 2 of builds")
    assert first.get_attribute("href") == "https://example.org/builds/2"
    assert "koji" in items.nth(0).inner_text()
    assert page.locator("notifier-inbox li time").first.get_attribute("datetime")
    assert items.nth(0).get_attribute("class") == "unread"
    assert items.nth(2).get_attribute("class") == "read"
    shots("open")
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.tagName") == "NOTIFIER-INBOX"
    page.keyboard.press(" ")
    expect(toggle).to_have_attribute("aria-expanded", "true")

    # nothing leaks either way: the host's button rule stays outside, the widget's inside
    assert computed(page, "#host-button", "color") == HOST_RED
    assert computed(page, "widget:button", "color") != HOST_RED
    assert computed(page, "widget:button", "fontSize") != "22px"
    assert computed(page, "widget:li", "fontFamily") != "serif"
    assert computed(page, "#host-panel", "position") == "static"
    assert computed(page, "#host-list li", "borderLeftWidth") == "0px"
    assert computed(page, "widget:.panel", "position") == "absolute"
    assert computed(page, "widget:li.unread", "borderLeftWidth") == "4px"

    # a new notification arrives through the live stream, without a reload
    started = time.monotonic()
    notifier.notify("alice", 1, rule="deploys", title="Deploy 7 finished",
                    link="https://example.org/deploys/7", app="bodhi")
    notifier.site.web.on_recorded()
    expect(titles.first).to_have_text("Deploy 7 finished")
    expect(toggle).to_have_accessible_name("Notifications 3 unread")
    arrived = time.monotonic() - started
    expect(items).to_have_count(4)
    expect(page.locator("notifier-inbox [role=status]")).to_have_text(
        "New notification: Deploy 7 finished")
    assert "bodhi" in items.nth(0).inner_text()
    print(f"a new notification showed in the widget {arrived:.2f} s after it was written")
    shots("live")

    # a click elsewhere on the host page closes it
    page.locator("#host-panel").click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    context.close()


def test_a_site_notifier_does_not_allow_gets_nothing(
        sites: Sites, browser: Browser, request: pytest.FixtureRequest) -> None:
    sites.notifier.notify("alice", 2)
    context, page = new_page(browser)
    shots = shots_for(request, page)
    sign_in(page, sites, "alice")
    answers = Answers(page, sites.notifier.base)
    page.goto(f"{sites.refused.origin}/")
    widget_state(page, "error")
    link = page.get_by_role("link", name="Notifications unavailable")
    assert link.get_attribute("href") == f"{sites.notifier.base}/inbox"
    expect(page.get_by_role("button", name=re.compile("^Notifications"))).to_have_count(0)
    assert "Build" not in page.locator("notifier-inbox").evaluate("w => w.shadowRoot.innerHTML")
    # the browser did send the cookie (the same site): notifier refused, without CORS headers
    listed = answers.wait("/api/v1/notifications?")
    for answer in listed:
        assert answer.status == 403
        assert not [h for h in answer.headers if h.startswith("access-control-")]
    shots("refused")
    context.close()


def test_on_another_site_the_widget_asks_to_sign_in_or_takes_a_read_token(
        sites: Sites, browser: Browser, request: pytest.FixtureRequest) -> None:
    notifier = sites.notifier
    notifier.notify("alice", 12)
    token, _ = Credentials(notifier.store).create_token("alice", "widget", "read")
    # at phone width, in dark mode
    context, page = new_page(browser, color_scheme="dark",
                             viewport={"width": 375, "height": 740})
    shots = shots_for(request, page)
    sign_in(page, sites, "alice")

    # the browser does not send notifier's cookie to localhost's pages: no one signed in
    page.goto(f"{sites.other_site.origin}/")
    widget_state(page, "signed-out")
    link = page.get_by_role("link", name="Sign in to notifier")
    assert link.get_attribute("href") == f"{notifier.base}/signin"
    shots("signed-out")

    sites.other_site.pages["/token"] = host_page(notifier.base, f' token="{token}"')
    page.goto(f"{sites.other_site.origin}/token")
    widget_state(page, "ready")
    toggle = page.get_by_role("button", name=re.compile("^Notifications"))
    expect(toggle).to_have_accessible_name("Notifications 12 unread")
    toggle.click()
    expect(page.locator("notifier-inbox li")).to_have_count(10)  # ?limit=10
    box = page.locator("notifier-inbox .panel").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert computed(page, "widget:.panel", "backgroundColor") == "rgb(21, 24, 28)"  # dark
    shots("token-open")

    notifier.notify("alice", 1, rule="deploys", title="Deploy 8 finished")
    notifier.site.web.on_recorded()
    expect(page.locator("notifier-inbox li .title").first).to_have_text("Deploy 8 finished")
    expect(toggle).to_have_accessible_name("Notifications 13 unread")
    expect(page.locator("notifier-inbox li")).to_have_count(10)
    shots("token-live")
    context.close()

