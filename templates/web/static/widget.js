/* notifier's inbox widget for other sites: <notifier-inbox>.
 *
 *   <script src="https://notify.example.org/widget.js" defer></script>
 *   <notifier-inbox></notifier-inbox>
 *
 * The element shows the signed-in person's unread count on a button that
 * opens a list of their latest notifications, kept up to date by the live
 * stream. Its markup and styles live in a shadow root: the host page's
 * styles do not reach in, and the widget's do not leak out.
 *
 * Attributes (all optional):
 *   base   where notifier is (default: where this script came from); "src" is the same
 *   token  a read token, for sites where the browser does not send notifier's
 *          session cookie (another site); without it the cookie is used
 *   limit  how many notifications the list shows (1 to 50, default 10)
 *   theme  "light" or "dark"; default: the browser's prefers-color-scheme
 *
 * The host element carries data-state: loading, ready, signed-out or error.
 * It only reads; it never changes anything on notifier.
 */
(() => {
  "use strict";

  const TAG = "notifier-inbox";
  if (customElements.get(TAG)) return;  // the script was included twice

  const script = document.currentScript;
  // notifier's address: the script's own, less "/widget.js" (notifier may live under a path)
  const SCRIPT_BASE = script && script.src
    ? script.src.replace(/[?#].*$/, "").replace(/\/widget\.js$/, "") : "";

  const STYLE = `
:host { all: initial; display: inline-block; position: relative; vertical-align: middle;
  --bg: #ffffff; --surface: #f4f6f8; --border: #c9d1d9; --text: #1b1f24; --muted: #57606a;
  --accent: #0b5cad; --accent-text: #ffffff; --focus: #c2410c;
  color: var(--text); font: 400 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
  "Noto Sans", sans-serif; color-scheme: light; }
@media (prefers-color-scheme: dark) {
  :host(:not([theme="light"])) { --bg: #15181c; --surface: #1f2329; --border: #3a414a;
    --text: #e6e8eb; --muted: #a8b0b9; --accent: #7cb7ff; --accent-text: #0d1117;
    --focus: #ffb077; color-scheme: dark; }
}
:host([theme="dark"]) { --bg: #15181c; --surface: #1f2329; --border: #3a414a;
  --text: #e6e8eb; --muted: #a8b0b9; --accent: #7cb7ff; --accent-text: #0d1117;
  --focus: #ffb077; color-scheme: dark; }
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.vh { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.toggle { display: inline-flex; align-items: center; gap: .4em; margin: 0;
  padding: .35em .7em; min-height: 2.75em; border: 1px solid var(--border);
  border-radius: 6px; background: var(--bg); color: var(--text); font: inherit;
  cursor: pointer; }
.toggle:hover { background: var(--surface); }
.toggle svg { width: 1.2em; height: 1.2em; fill: currentColor; flex: none; }
.badge { min-width: 1.6em; padding: 0 .4em; border-radius: 1em; background: var(--accent);
  color: var(--accent-text); font-size: .8em; font-weight: 700; text-align: center; }
.panel { position: absolute; top: calc(100% + .3em); right: 0; z-index: 2147483000;
  width: 22rem; max-width: calc(100vw - 1rem); background: var(--bg); color: var(--text);
  border: 1px solid var(--border); border-radius: 6px;
  box-shadow: 0 6px 24px rgb(0 0 0 / .18); text-align: start; }
.panel.start { right: auto; left: 0; }
.head { margin: 0; padding: .6em .9em; border-bottom: 1px solid var(--border);
  font-weight: 700; }
ul { list-style: none; margin: 0; padding: 0; max-height: 24rem; overflow-y: auto; }
li { padding: .55em .9em; border-bottom: 1px solid var(--border); overflow-wrap: anywhere; }
li.unread { border-left: 4px solid var(--accent); padding-left: calc(.9em - 4px); }
li.unread .title { font-weight: 700; }
.meta { display: block; color: var(--muted); font-size: .85em; }
.empty, .foot, .message { margin: 0; padding: .6em .9em; }
.foot { font-size: .9em; }
.signin, .loading { display: inline-flex; align-items: center; min-height: 2.75em;
  padding: .35em .7em; border: 1px solid var(--border); border-radius: 6px;
  background: var(--bg); }
.loading { color: var(--muted); }
`;

  const BELL = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 ' +
    "22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 " +
    "1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z\"/></svg>";

  let instances = 0;

  /** A link's address if it is a web address; null for anything else (javascript:, data:). */
  function webLink(value) {
    if (typeof value !== "string") return null;
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  /** "5 min ago", "yesterday"... in the page's language. */
  function ago(seconds) {
    const format = new Intl.RelativeTimeFormat(undefined, {numeric: "auto"});
    const diff = seconds - Date.now() / 1000;
    for (const [unit, size] of [["year", 31536000], ["month", 2592000], ["week", 604800],
                                ["day", 86400], ["hour", 3600], ["minute", 60]]) {
      if (Math.abs(diff) >= size) return format.format(Math.round(diff / size), unit);
    }
    return format.format(0, "second");
  }

  function element(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  class NotifierInbox extends HTMLElement {
    static get observedAttributes() { return ["base", "src", "token", "limit"]; }

    constructor() {
      super();
      this.number = ++instances;
      this.root = this.attachShadow({mode: "open"});
      if ("adoptedStyleSheets" in this.root && typeof CSSStyleSheet === "function") {
        // A constructed sheet, not a <style>: it works under a host page's strict CSP.
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(STYLE);
        this.root.adoptedStyleSheets = [sheet];
      } else {
        this.root.append(element("style", {textContent: STYLE}));
      }
      this.items = [];
      this.counts = null;
      this.run = 0;  // bumped on every (re)start: answers of an older run are dropped
      this.onDocumentClick = (event) => {
        if (this.isOpen() && !event.composedPath().includes(this)) this.setOpen(false);
      };
      // back to this tab: what changed meanwhile (read elsewhere, signed in elsewhere)
      this.onVisible = () => {
        if (document.visibilityState === "visible" && this.dataset.state !== "loading") {
          this.refresh();
        }
      };
    }

    connectedCallback() {
      document.addEventListener("click", this.onDocumentClick);
      document.addEventListener("visibilitychange", this.onVisible);
      this.start();
    }

    disconnectedCallback() {
      document.removeEventListener("click", this.onDocumentClick);
      document.removeEventListener("visibilitychange", this.onVisible);
      this.stop();
    }

    attributeChangedCallback(name, old, value) {
      if (old !== value && this.isConnected) this.start();
    }

    get base() {
      const given = (this.getAttribute("base") || this.getAttribute("src") || "").trim();
      return (given || SCRIPT_BASE || location.origin).replace(/\/+$/, "");
    }

    get token() { return (this.getAttribute("token") || "").trim(); }

    get limit() {
      const n = parseInt(this.getAttribute("limit") || "10", 10);
      return Number.isFinite(n) ? Math.min(Math.max(n, 1), 50) : 10;
    }

    setState(state) {
      this.dataset.state = state;
      this.dispatchEvent(new CustomEvent("notifier-inbox-state", {detail: {state}}));
    }

    stop() {
      this.run += 1;
      if (this.source) this.source.close();
      this.source = null;
      clearTimeout(this.retryTimer);
      clearTimeout(this.refreshTimer);
      if (this.aborter) this.aborter.abort();
    }

    start() {
      this.stop();
      this.items = [];
      this.counts = null;
      this.failures = 0;
      this.renderShell();
      this.setState("loading");
      this.load(this.run);
    }

    /** The API's answer to a GET, as JSON; throws {status} when it is not a 2xx. */
    async get(path, run) {
      this.aborter = new AbortController();
      const init = {cache: "no-store", signal: this.aborter.signal,
                    headers: {Accept: "application/json"}};
      if (this.token) {
        init.credentials = "omit";
        init.headers.Authorization = "Bearer " + this.token;
      } else {
        init.credentials = "include";
      }
      const response = await fetch(this.base + path, init);
      if (run !== this.run) throw {stale: true};
      if (!response.ok) throw {status: response.status};
      return response.json();
    }

    async load(run) {
      try {
        const page = await this.get(`/api/v1/notifications?limit=${this.limit}`, run);
        this.failures = 0;
        this.items = [];
        this.merge(page.items || []);
        this.counts = page.counts || null;
        if (this.dataset.state !== "ready") {
          this.renderReady();
          this.setState("ready");
        }
        if (!this.source) this.listen(run);
        this.renderItems();
      } catch (error) {
        if (error && error.stale) return;
        if (error && (error.status === 401 || error.status === 403)) {
          this.renderSignIn();
          this.setState("signed-out");
        } else {
          // A refused cross-origin request (an origin notifier does not allow), notifier
          // away or erring: say so, and try again later.
          if (this.dataset.state !== "ready") {
            this.renderError();
            this.setState("error");
          }
          this.retryLater(() => this.load(run));
        }
      }
    }

    retryLater(again) {
      this.failures = (this.failures || 0) + 1;
      const seconds = Math.min(5 * 2 ** (this.failures - 1), 300);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(again, seconds * 1000);
    }

    /** The live stream: new notifications as they come, and the counts when it opens. */
    listen(run) {
      if (run !== this.run || typeof EventSource !== "function") return;
      let url = this.base + "/api/v1/notifications/stream";
      if (this.token) url += "?token=" + encodeURIComponent(this.token);
      const source = new EventSource(url, {withCredentials: !this.token});
      this.source = source;
      source.addEventListener("counts", (event) => {
        const counts = this.parse(event.data);
        if (counts && typeof counts.unread === "number") {
          this.counts = counts;
          this.renderCount();
        }
        this.refreshSoon();  // what changed while it was not connected
      });
      source.addEventListener("notification", (event) => {
        const item = this.parse(event.data);
        if (!item || typeof item.id !== "number") return;
        const known = this.items.some((old) => old.id === item.id);
        this.merge([item]);
        if (!known) {
          if (this.counts && !item.read) this.counts.unread += 1;
          this.renderItems();
          this.announce(item);
        }
        this.refreshSoon();  // the counts as the server has them
      });
      source.addEventListener("error", () => {
        if (source.readyState === EventSource.CLOSED && this.source === source) {
          // A refusal (signed out, token revoked) or no stream here: read the list again
          // later, which says which, and opens the stream again if it can.
          this.source = null;
          this.retryLater(() => this.load(run));
        }
      });
      source.addEventListener("open", () => { this.failures = 0; });
    }

    parse(text) {
      try {
        return JSON.parse(text);
      } catch (_) {
        return null;
      }
    }

    /** Read the list again, once, shortly (bursts of events cost one request). */
    refreshSoon() {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.refresh(), 400);
    }

    refresh() { this.load(this.run); }

    merge(items) {
      const byId = new Map(this.items.map((item) => [item.id, item]));
      for (const item of items) {
        if (item && typeof item.id === "number") byId.set(item.id, item);
      }
      this.items = [...byId.values()].sort((a, b) => b.id - a.id).slice(0, this.limit);
    }

    isOpen() { return Boolean(this.toggle) && this.toggle.getAttribute("aria-expanded") === "true"; }

    setOpen(open) {
      if (!this.toggle) return;
      this.toggle.setAttribute("aria-expanded", String(open));
      this.panel.hidden = !open;
      if (open) {
        this.renderItems();  // the times, as of now
        // open towards the side with room
        const box = this.getBoundingClientRect();
        const width = Math.min(this.panel.offsetWidth || 352, window.innerWidth);
        this.panel.classList.toggle("start", box.right - width < 0);
      }
    }

    renderShell() {
      this.root.replaceChildren();
      this.toggle = null;
      this.panel = null;
      this.live = element("span", {className: "vh"});
      this.live.setAttribute("role", "status");
      this.body = element("div", {className: "body"});
      this.root.append(this.body, this.live);
      const loading = element("span", {className: "loading"}, "Notifications…");
      this.body.append(loading);
    }

    renderSignIn() {
      this.closeAndClear();
      const link = element("a", {className: "signin", href: this.base + "/signin",
                                 target: "_top", textContent: "Sign in to notifier"});
      this.body.replaceChildren(link);
    }

    renderError() {
      this.closeAndClear();
      const link = element("a", {className: "signin", href: this.base + "/inbox",
                                 target: "_top", textContent: "Notifications unavailable"});
      link.title = "notifier did not answer this page; open it instead";
      this.body.replaceChildren(link);
    }

    closeAndClear() {
      if (this.source) this.source.close();
      this.source = null;
      this.toggle = null;
      this.panel = null;
    }

    renderReady() {
      const id = `notifier-inbox-panel-${this.number}`;
      this.count = element("span", {className: "badge"});
      this.countText = element("span", {className: "vh"});
      this.toggle = element("button", {type: "button", className: "toggle"});
      this.toggle.innerHTML = BELL;
      this.toggle.append(element("span", {textContent: "Notifications"}), this.count,
                         this.countText);
      this.toggle.setAttribute("aria-expanded", "false");
      this.toggle.setAttribute("aria-controls", id);
      this.toggle.addEventListener("click", () => this.setOpen(!this.isOpen()));
      this.list = element("ul");
      this.list.setAttribute("aria-label", "Latest notifications");
      this.empty = element("p", {className: "empty", textContent: "No notifications yet."});
      this.panel = element("div", {className: "panel", id, hidden: true},
        element("p", {className: "head", textContent: "Latest notifications"}),
        this.list, this.empty,
        element("p", {className: "foot"}, element("a", {href: this.base + "/inbox",
                                                         target: "_top",
                                                         textContent: "Open your inbox"})));
      this.panel.addEventListener("keydown", (event) => this.onKey(event));
      this.toggle.addEventListener("keydown", (event) => this.onKey(event));
      this.body.replaceChildren(this.toggle, this.panel);
    }

    onKey(event) {
      if (event.key === "Escape" && this.isOpen()) {
        event.stopPropagation();
        this.setOpen(false);
        this.toggle.focus();
      }
    }

    renderCount() {
      if (!this.count) return;
      const unread = this.counts ? Math.max(0, this.counts.unread) : 0;
      this.count.textContent = unread > 99 ? "99+" : String(unread);
      this.count.hidden = unread === 0;
      this.countText.textContent = unread === 0 ? ", none unread" : ` unread`;
      this.dataset.unread = String(unread);
    }

    renderItems() {
      if (!this.list) return;
      this.renderCount();
      this.list.replaceChildren(...this.items.map((item) => this.renderItem(item)));
      this.list.hidden = this.items.length === 0;
      this.empty.hidden = this.items.length !== 0;
    }

    renderItem(item) {
      const title = typeof item.title === "string" && item.title ? item.title : "(no title)";
      const href = webLink(item.link);
      const head = href
        ? element("a", {className: "title", href, target: "_top", textContent: title})
        : element("span", {className: "title", textContent: title});
      const seconds = typeof item.timestamp === "number" ? item.timestamp : item.created_at;
      const meta = element("span", {className: "meta"});
      if (!item.read) meta.append(element("span", {className: "vh", textContent: "Unread. "}));
      if (typeof item.app === "string" && item.app) meta.append(item.app, " · ");
      if (typeof seconds === "number") {
        const when = new Date(seconds * 1000);
        meta.append(element("time", {dateTime: when.toISOString(), title: when.toLocaleString(),
                                     textContent: ago(seconds)}));
      }
      return element("li", {className: item.read ? "read" : "unread"}, head, meta);
    }

    announce(item) {
      if (this.live && typeof item.title === "string") {
        this.live.textContent = `New notification: ${item.title}`;
      }
    }
  }

  customElements.define(TAG, NotifierInbox);
})();
