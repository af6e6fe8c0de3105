"""Feed rendering, HTML sanitizing and the HTTP validators of feeds."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import feedparser
import pytest

from notifier.render.feed import (
    conditional_response,
    feed_validators,
    render_feed,
    sanitize_html,
    xml_text,
)
from notifier.storage.feeds import FeedItem

SELF = "https://notifier.example.org/feeds/tok/alice.atom"
HOSTILE = ('<p onclick="steal()">Build <b>done</b> ✓<script>alert("x")</script>'
           '<style>body{display:none}</style><img src="https://example.org/a.png" '
           'onerror="steal()"><a href="java\tscript:steal()">bad</a>'
           '<a href="&#106;avascript:steal()">bad2</a>'
           '<a href="https://koji.example.org/42?a=1&amp;b=2">good</a></p>')


def item(i: int, title: str = "", content: str = "<p>x</p>", stored_at: float = 0.0,
         link: str | None = None) -> FeedItem:
    return FeedItem(id=i, user="alice", msg_id=f"2025-{i}", title=title or f"item {i}",
                    content=content, link=link, topic="org.fedoraproject.prod.koji",
                    app="koji", published=1_700_000_000.0 + i,
                    stored_at=stored_at or 1_700_000_100.0 + i)


# -- sanitize_html -------------------------------------------------------------

def test_scripts_styles_and_handlers_are_dropped() -> None:
    clean = sanitize_html(HOSTILE)
    for bad in ("script", "alert", "style", "display:none", "onclick", "onerror", "steal"):
        assert bad not in clean
    assert "<p>Build <b>done</b> ✓" in clean
    assert '<img src="https://example.org/a.png">' in clean
    assert '<a>bad</a><a>bad2</a>' in clean
    assert '<a href="https://koji.example.org/42?a=1&amp;b=2">good</a>' in clean


@pytest.mark.parametrize(("fragment", "expected"), [
    ("<div><p>open <i>tags", "<div><p>open <i>tags</i></p></div>"),
    ("</p>stray end<br/>", "stray end<br>"),
    ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
    ("<iframe src=x><p>inside</p></iframe>after", "after"),
    ("<unknown>kept text</unknown>", "kept text"),
    ('<a href="mailto:a@example.org" target="_blank">m</a>',
     '<a href="mailto:a@example.org">m</a>'),
    ('<a href="/relative?x=&quot;1&quot;">r</a>', '<a href="/relative?x=&quot;1&quot;">r</a>'),
    ("<!-- comment --><p>x</p>", "<p>x</p>"),
    ("<script>never closed", ""),
    ('<embed src="x.swf">text after', "text after"),
    ("<SCRIPT>alert(1)</SCRIPT><B>bold</B>", "<b>bold</b>"),
])
def test_sanitize_rebuilds_well_formed_markup(fragment: str, expected: str) -> None:
    assert sanitize_html(fragment) == expected


def test_xml_text_drops_characters_xml_cannot_carry() -> None:
    assert xml_text("a\x00b\x07c\x1bd\te\nf\ufffe") == "abcd\te\nf"


# -- render_feed ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_feed_parses_cleanly_with_unicode_and_hostile_html(fmt: str) -> None:
    items = [item(2, title="Zoë’s build ✓ 漢字 🚀", content=HOSTILE + "\x01",
                  link="https://koji.example.org/42"), item(1)]
    data = render_feed("zoë", items, fmt, SELF)
    assert b"<script" not in data and b"&lt;script" not in data and b"alert" not in data
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.feed.title == "Notifications for zoë"
    assert [e.title for e in parsed.entries] == ["Zoë’s build ✓ 漢字 🚀", "item 1"]
    assert [e.id for e in parsed.entries] == ["urn:notifier:message:2025-2",
                                              "urn:notifier:message:2025-1"]
    first = parsed.entries[0]
    body = first.content[0].value if fmt == "atom" else first.summary
    assert "Build <b>done</b> ✓" in body
    assert first.link == "https://koji.example.org/42"
    assert first.published_parsed[:6] == (2023, 11, 14, 22, 13, 22)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_same_items_give_the_same_bytes(fmt: str) -> None:
    items = [item(3), item(2)]
    assert render_feed("alice", items, fmt, SELF) == render_feed("alice", items, fmt, SELF)
    assert render_feed("alice", [], fmt, SELF) == render_feed("alice", [], fmt, SELF)


def test_empty_feed_is_valid() -> None:
    for fmt in ("atom", "rss"):
        parsed = feedparser.parse(render_feed("alice", [], fmt, SELF))
        assert parsed.bozo == 0
        assert parsed.entries == []


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="atom, rss"):
        render_feed("alice", [], "json", SELF)


# -- validators and conditional requests ---------------------------------------

def test_validators_follow_the_newest_item_and_count() -> None:
    items = [item(7, stored_at=1_700_000_500.9), item(5, stored_at=1_700_000_400.0)]
    etag, modified = feed_validators(items, "atom")
    assert etag == '"atom-7-2"'
    assert modified == "Tue, 14 Nov 2023 22:21:40 GMT"
    assert parsedate_to_datetime(modified).timestamp() == 1_700_000_500
    assert feed_validators(items, "rss")[0] == '"rss-7-2"'
    assert feed_validators(items[1:], "atom")[0] == '"atom-5-1"'
    assert feed_validators([], "atom") == ('"atom-0-0"', None)


LAST = "Tue, 14 Nov 2023 22:21:40 GMT"
NOW = 1_800_000_000.0


@pytest.mark.parametrize(("headers", "fresh"), [
    ({}, False),
    ({"If-None-Match": '"atom-7-2"'}, True),
    ({"if-none-match": 'W/"atom-7-2"'}, True),
    ({"If-None-Match": '"other", "atom-7-2"'}, True),
    ({"If-None-Match": "*"}, True),
    ({"If-None-Match": '"atom-6-2"'}, False),
    # If-None-Match decides alone, even when the date would match.
    ({"If-None-Match": '"atom-6-2"', "If-Modified-Since": LAST}, False),
    ({"If-Modified-Since": LAST}, True),
    ({"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"}, True),
    ({"If-Modified-Since": "Tue, 14 Nov 2023 22:21:39 GMT"}, False),
    ({"If-Modified-Since": "yesterday"}, False),
    ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, False),
])
def test_conditional_response(headers: dict[str, str], fresh: bool) -> None:
    assert conditional_response(headers, '"atom-7-2"', LAST, now=NOW) is fresh


def test_empty_feed_has_no_date_to_compare() -> None:
    assert conditional_response({"If-Modified-Since": LAST}, '"atom-0-0"', None) is False


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_the_token_is_only_in_the_self_link(fmt: str) -> None:
    self_url = f"https://notify.example.org/feeds/alice.{fmt}?token=SECRET"
    data = render_feed("alice", [item(1)], fmt, self_url, home_url="https://notify.example.org/")
    assert data.count(b"SECRET") == 1
    parsed = feedparser.parse(data)
    assert [link.href for link in parsed.feed.links if link.rel == "self"] == [self_url]
    assert parsed.feed.link == "https://notify.example.org/"
    if fmt == "atom":
        assert parsed.feed.id == "https://notify.example.org/feeds/alice.atom"
