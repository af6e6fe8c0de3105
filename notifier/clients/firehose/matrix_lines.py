"""The firehose's lines as Matrix message content: a plain body and an HTML body.

The queue writes lines with mIRC colour codes (:mod:`.lines`); here the
app's colour becomes ``<font color data-mx-color>`` and links become anchors.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .lines import strip_formatting

#: the usual RGB of the 16 mIRC colours
HEX = ("#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
       "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2")
_PAINTED = re.compile(r"\x03(\d{1,2})(.*?)(?:\x03|$)")
_LINK = re.compile(r"https?://[^\s<>\"']+")


def _plain_html(text: str) -> str:
    out, last = [], 0
    for match in _LINK.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def to_html(text: str) -> str:
    """``text`` (with mIRC colours) as Matrix HTML: coloured fonts and links."""
    out, last = [], 0
    for match in _PAINTED.finditer(text):
        out.append(_plain_html(strip_formatting(text[last:match.start()])))
        colour = HEX[int(match.group(1)) % 16]
        inner = html.escape(strip_formatting(match.group(2)))
        out.append(f'<font color="{colour}" data-mx-color="{colour}">{inner}</font>')
        last = match.end()
    out.append(_plain_html(strip_formatting(text[last:])))
    return "".join(out)


def content(text: str, method: str = "notice") -> dict[str, Any]:
    """The ``m.room.message`` content of one line: ``m.notice`` (or ``m.text``)."""
    return {"msgtype": "m.notice" if method == "notice" else "m.text",
            "body": strip_formatting(text), "format": "org.matrix.custom.html",
            "formatted_body": to_html(text)}
