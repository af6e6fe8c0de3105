"""The lines the firehose posts: ``[app] summary link``, coloured per app, and fold lines."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: mIRC colour numbers by name
COLOURS = {"white": 0, "black": 1, "blue": 2, "green": 3, "red": 4, "brown": 5, "purple": 6,
           "orange": 7, "yellow": 8, "lime": 9, "teal": 10, "cyan": 11, "royal": 12,
           "pink": 13, "grey": 14, "silver": 15}
#: the colours an app may get by default: readable on light and dark backgrounds alike
_PALETTE = (2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13)
_COLOUR_CODE = "\x03"
#: mIRC formatting: colour with its numbers, bold, italics, underline, reverse, reset
_FORMATTING = re.compile(r"\x03(\d{1,2}(,\d{1,2})?)?|[\x02\x0f\x16\x1d\x1f\x1e\x11]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: bytes of text a line may have: the rest of the 512 goes to the command and target
MAX_TEXT_BYTES = 400


def strip_formatting(text: str) -> str:
    """``text`` without mIRC colour and formatting codes."""
    return _FORMATTING.sub("", text)


def clean(text: str) -> str:
    """One line of plain text: control characters (newlines, colours) become spaces."""
    return _CONTROL.sub(" ", strip_formatting(text)).strip()


def truncate(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes, on a character boundary, with an ellipsis."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode(errors="ignore").rstrip() + "…"


class Colours:
    """The colour of each app: ``overrides`` (``app=colour``), else a stable hash of its name."""

    def __init__(self, overrides: Iterable[str] = ()):
        self.overrides: dict[str, int] = {}
        for entry in overrides:
            app, _, colour = entry.partition("=")
            colour = colour.strip()
            self.overrides[app.strip().lower()] = (int(colour) if colour.isdigit()
                                                   else COLOURS[colour])

    def of(self, app: str) -> int:
        """The mIRC colour number of ``app``: the same in every run and on every machine."""
        key = app.lower()
        if key in self.overrides:
            return self.overrides[key]
        return _PALETTE[zlib.crc32(key.encode()) % len(_PALETTE)]

    def paint(self, app: str, text: str, colour: bool) -> str:
        """``text`` in ``app``'s colour, or plain when ``colour`` is false."""
        if not colour:
            return text
        return f"{_COLOUR_CODE}{self.of(app):02d}{text}{_COLOUR_CODE}"


def app_of(record: Mapping[str, Any]) -> str:
    """The app a message is filed under: its described app, else its topic's app segment."""
    app = clean(record.get("app") or "")
    if app:
        return app
    parts = [p for p in str(record.get("topic", "")).split(".") if p]
    # org.fedoraproject.prod.<app>.…: the segment after the prefix and environment
    return parts[3] if len(parts) > 4 else (parts[0] if parts else "bus")


def summary_of(record: Mapping[str, Any]) -> str:
    """The summary, or a readable fallback (the topic, and who did it): never empty."""
    summary = clean(record.get("summary") or "")
    topic = clean(str(record.get("topic") or ""))
    if summary and summary != topic and not topic.endswith("." + summary):
        return summary
    agent = clean(record.get("agent") or "")
    fallback = short_topic(topic) or "a message with no topic"
    return f"{fallback} by {agent}" if agent else fallback


def message_line(record: Mapping[str, Any], colours: Colours, colour: bool) -> str:
    """``[app] summary link`` for one described message."""
    app = app_of(record)
    link = clean(record.get("link") or "")
    tag = colours.paint(app, f"[{app}]", colour)
    room = MAX_TEXT_BYTES - len(tag.encode()) - len(link.encode()) - 2
    text = f"{tag} {truncate(summary_of(record), max(room, 40))}"
    return f"{text} {link}" if link else text


@dataclass
class Fold:
    """Messages of one app folded into one line: counts by topic, and the newest link."""

    app: str
    topics: dict[str, int] = field(default_factory=dict)
    link: str = ""
    #: when the oldest message in the fold arrived (time.monotonic)
    first_at: float = 0.0
    #: the first message, posted as itself when it stays alone in the fold
    first: Mapping[str, Any] | None = None

    @property
    def count(self) -> int:
        return sum(self.topics.values())

    def add(self, record: Mapping[str, Any], at: float) -> None:
        topic = str(record.get("topic") or "")
        self.topics[topic] = self.topics.get(topic, 0) + 1
        self.link = clean(record.get("link") or "") or self.link
        if self.first is None:
            self.first, self.first_at = record, at

    def line(self, colours: Colours, colour: bool) -> str:
        """``koji: 37 more (buildsys.build.state.change ×30, buildsys.tag ×7) — <link>``."""
        parts = sorted(self.topics.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{short_topic(t)} ×{n}" for t, n in parts[:4])
        if len(parts) > 4:
            shown += f", {len(parts) - 4} more topics"
        head = colours.paint(self.app, f"{self.app}:", colour)
        text = truncate(f"{head} {self.count} more ({shown})", MAX_TEXT_BYTES - 200)
        return f"{text} — {self.link}" if self.link else text


def short_topic(topic: str) -> str:
    """The topic without its prefix and environment: ``buildsys.tag`` for
    ``org.fedoraproject.prod.buildsys.tag``."""
    parts = topic.split(".")
    return ".".join(parts[3:]) if len(parts) > 4 else topic

