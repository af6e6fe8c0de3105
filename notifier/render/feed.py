"""Feeds: a user's stored feed items as Atom or RSS 2.0, and the HTTP validators for them.

Whoever serves a feed reads the items (:class:`~notifier.storage.feeds.FeedStore`)
and calls :func:`render_feed`, with :func:`feed_validators` and
:func:`conditional_response` to answer ``304 Not Modified``::

    items = store.items(user)
    etag, last_modified = feed_validators(items, "atom")
    if conditional_response(request.headers, etag, last_modified):
        ...  # 304, with the ETag and Last-Modified headers
    body = render_feed(user, items, "atom", self_url, home_url=home_url)

The HTML content is sanitized when the feed is written (an allow-list of
tags and attributes; ``<script>``, ``<style>`` and the like are dropped with
their content, and links keep only http, https and mailto URLs), then
embedded as escaped text, so feed readers that do not sanitize are safe too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from feedgen.feed import FeedGenerator

from .. import __version__
from ..storage.feeds import FeedItem

FeedFormat = Literal["atom", "rss"]
FORMATS: tuple[FeedFormat, ...] = ("atom", "rss")


def render_feed(user: str, items: Sequence[FeedItem], fmt: FeedFormat, self_url: str,
                *, home_url: str | None = None, title: str | None = None) -> bytes:
    """``user``'s feed as Atom or RSS 2.0 XML (UTF-8), items in the order given.

    ``items`` come newest first, as :meth:`FeedStore.items` returns them.
    ``self_url`` is where the feed is served, with whatever token fetching it
    takes: it appears only as the ``self`` link, the one place a reader
    fetches from. The feed's id is ``self_url`` without its query string (so
    without the token), and its ``alternate`` link (RSS: the channel's link)
    is ``home_url``, by default that id. The same arguments always give the
    same bytes, so the strong ETag of :func:`feed_validators` holds.
    """
    if fmt not in FORMATS:
        raise ValueError(f"feed format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    feed_id = urlunsplit(urlsplit(self_url)._replace(query="", fragment=""))
    feed = FeedGenerator()
    feed.id(xml_text(feed_id))
    feed.title(xml_text(title or f"Notifications for {user}"))
    feed.description(xml_text(f"Notifications for {user}, newest first"))
    feed.author({"name": "notifier"})
    feed.link(href=xml_text(self_url), rel="self")
    # Last: RSS takes the last link as the channel's <link>.
    feed.link(href=xml_text(home_url or feed_id), rel="alternate")
    feed.generator("notifier", __version__)
    feed.updated(_utc(max((item.stored_at for item in items), default=0.0)))
    for item in items:
        entry = feed.add_entry(order="append")
        entry.id(f"urn:notifier:message:{quote(item.msg_id, safe='')}")
        entry.title(xml_text(item.title))
        if item.link:
            entry.link(href=xml_text(item.link), rel="alternate")
        when = _utc(item.published)
        entry.published(when)
        entry.updated(when)
        entry.content(sanitize_html(item.content), type="html")
        if item.app:
            entry.category(term=xml_text(item.app))
    if fmt == "atom":
        return feed.atom_str(pretty=True, encoding="UTF-8")
    return feed.rss_str(pretty=True, encoding="UTF-8")


def feed_validators(items: Sequence[FeedItem], fmt: FeedFormat) -> tuple[str, str | None]:
    """``(ETag, Last-Modified)`` header values for the feed of ``items``.

    The ETag is strong, made of the format, the newest item's id and the
    number of items: adding an item changes the first, trimming never
    happens without an add. Last-Modified is when the newest item was
    stored, as an HTTP date; None for an empty feed.
    """
    newest = max((item.id for item in items), default=0)
    etag = f'"{fmt}-{newest}-{len(items)}"'
    if not items:
        return etag, None
    stored = max(item.stored_at for item in items)
    return etag, format_datetime(_utc(float(int(stored))), usegmt=True)


_ETAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def conditional_response(request_headers: Mapping[str, str], etag: str,
                         last_modified: str | None, *, now: float | None = None) -> bool:
    """Whether a GET or HEAD with these headers gets ``304 Not Modified``.

    As RFC 9110 section 13.2.2 orders it: ``If-None-Match``, when present,
    decides alone (weak comparison, ``*`` matches); otherwise
    ``If-Modified-Since`` holds when the feed has not changed since that date.
    A malformed date, or one in the future, is ignored. Header names are
    matched without regard to case.
    """
    headers = {name.lower(): value for name, value in request_headers.items()}
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        wanted = _opaque(etag)
        return any(tag == wanted for tag in _ETAG.findall(if_none_match))
    since_text = headers.get("if-modified-since")
    if since_text is None or last_modified is None:
        return False
    try:
        since = _aware(parsedate_to_datetime(since_text))
    except (TypeError, ValueError, IndexError):
        return False
    current = datetime.now(UTC) if now is None else _utc(now)
    if since > current:
        return False
    return _aware(parsedate_to_datetime(last_modified)) <= since


def _opaque(etag: str) -> str:
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# -- text and HTML ---------------------------------------------------------

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (NUL, most C0 controls)."""
    return _XML_ILLEGAL.sub("", text)


_ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p",
    "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul"})
_VOID_TAGS = frozenset({"br", "hr", "img"})
_ALLOWED_ATTRS = {
    "a": frozenset({"href", "title"}),
    "abbr": frozenset({"title"}),
    "blockquote": frozenset({"cite"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "q": frozenset({"cite"}),
    "td": frozenset({"colspan", "rowspan"}),
    "th": frozenset({"colspan", "rowspan"}),
}
_URL_ATTRS = frozenset({"href", "src", "cite"})
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
#: dropped together with everything inside them (void elements such as <embed> have no
#: inside, and are dropped as any tag that is not allowed)
_DROPPED_TAGS = frozenset({
    "script", "style", "iframe", "frameset", "object", "applet", "template", "noscript",
    "noembed", "head", "title", "textarea", "select", "svg", "math"})
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_IGNORED_IN_URLS = re.compile(r"[\x00-\x20\x7f]+")


def sanitize_html(fragment: str) -> str:
    """``fragment`` rebuilt from allowed tags, attributes and escaped text only."""
    cleaner = _Sanitizer()
    cleaner.feed(xml_text(fragment))
    cleaner.close()
    return cleaner.result()


def _safe_url(value: str) -> bool:
    # Browsers skip whitespace and control characters inside a scheme ("java\tscript:").
    scheme = _SCHEME.match(_IGNORED_IN_URLS.sub("", value))
    return scheme is None or scheme.group(1).lower() in _SAFE_SCHEMES


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._open: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_TAGS:
            self._skipping += 1
            return
        if self._skipping or tag not in _ALLOWED_TAGS:
            return
        allowed = _ALLOWED_ATTRS.get(tag, frozenset())
        kept = "".join(
            f' {name}="{html.escape(value, quote=True)}"' for name, value in attrs
            if name in allowed and value is not None
            and (name not in _URL_ATTRS or _safe_url(value)))
        self._out.append(f"<{tag}{kept}>")
        if tag not in _VOID_TAGS:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_TAGS:
            return
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
            return
        if self._skipping or tag not in self._open:
            return
        while self._open:
            closing = self._open.pop()
            self._out.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._out.append(html.escape(data, quote=False))

    def result(self) -> str:
        return "".join(self._out) + "".join(f"</{tag}>" for tag in reversed(self._open))
