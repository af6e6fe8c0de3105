"""Cleaning rendered text so it fits where it goes.

Each rendered part has a *kind* that says what it may contain:

* ``line``: one line (email subject, feed title, desktop summary, every
  email header value). Every control character, including CR, LF and the
  Unicode line and paragraph separators, becomes a space, so a message can
  never start a new header.
* ``text``: plain text over several lines. Line ends become ``\\n``; other
  control characters (except tab) are dropped.
* ``html``: markup, escaped by the template engine. Control characters that
  XML forbids are dropped, so feeds stay well-formed.
* ``irc``: one IRC line; see :func:`irc_line`.
"""

from __future__ import annotations

import re

#: bytes an IRC line may take, before the "PRIVMSG nick :" prefix and CRLF
IRC_MAX_BYTES = 450
#: longest single-line part (subject, title, summary), in characters
LINE_MAX_CHARS = 255
ELLIPSIS = "…"

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators:
# str.splitlines() treats most of these as line ends, so none may survive in a header.
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r" {2,}")
_TEXT_DROP = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # keeps \t and \n (\r handled first)
_XML_DROP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_IRC_DATA_DROP = re.compile(r"[\x00-\x1f\x7f]")
_IRC_LITERAL_SPACE = re.compile(r" *[\r\n\t\v\f][ \r\n\t\v\f]*")
# Kept: the formatting codes a template may emit (bold, colour, reset, reverse,
# italic, strikethrough, underline, monospace). Dropped: everything else, such
# as NUL and the CTCP delimiter \x01.
_IRC_LITERAL_DROP = re.compile(r"[\x00\x01\x04-\x08\x0e\x10\x12-\x15\x17-\x1c\x7f]")
_EMPTY_TOGGLE = "\x02\x02"
_IRC_DANGLING_COLOUR = re.compile(r"\x03(\d{1,2}(,\d{0,2})?)?$")


def single_line(value: str, max_chars: int | None = LINE_MAX_CHARS) -> str:
    """``value`` as one line: controls become spaces, runs of spaces shrink, ends trimmed."""
    value = _SPACES.sub(" ", _LINE_BREAKERS.sub(" ", value)).strip()
    if max_chars is not None and len(value) > max_chars:
        value = value[: max_chars - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return value


def plain_text(value: str) -> str:
    """Multi-line plain text: ``\\n`` line ends, no control characters but tab and newline."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _TEXT_DROP.sub("", value)


def markup_text(value: str) -> str:
    """Rendered markup without the control characters XML 1.0 forbids."""
    return _XML_DROP.sub("", value)


def irc_data(value: str) -> str:
    """Message content bound for an IRC line: every control character removed.

    This takes out CR, LF and NUL (which would end or corrupt the IRC command),
    ``\\x01`` (which would turn the line into a CTCP request) and the formatting
    codes, so only the template decides colours.
    """
    return _IRC_DATA_DROP.sub("", value)


def irc_line(value: str, max_bytes: int = IRC_MAX_BYTES) -> str:
    """The final IRC line: one line, at most ``max_bytes`` of UTF-8.

    Line breaks and tabs left by the template itself (with the spaces around
    them) become one space; the
    formatting codes the template wrote (bold ``\\x02``, colour ``\\x03NN``,
    reset ``\\x0f``, ...) stay. A longer line is cut on a character boundary
    and ends with an ellipsis.
    """
    value = _IRC_LITERAL_DROP.sub("", _IRC_LITERAL_SPACE.sub(" ", value)).strip()
    if value.endswith(_EMPTY_TOGGLE):  # the guard after a closing colour code
        value = value[: -len(_EMPTY_TOGGLE)]
    return truncate_utf8(value, max_bytes)


def truncate_utf8(value: str, max_bytes: int) -> str:
    """``value`` cut to at most ``max_bytes`` of UTF-8, ending in an ellipsis when cut.

    The cut falls between characters, never inside one, and never leaves half
    an IRC colour code before the ellipsis.
    """
    encoded = value.encode("utf-8")
    if len(encoded) <= max_bytes:
        return value
    room = max_bytes - len(ELLIPSIS.encode("utf-8"))
    if room <= 0:
        return encoded[:max_bytes].decode("utf-8", "ignore")
    # Decoding with "ignore" drops a multi-byte character the cut went through.
    head = encoded[:room].decode("utf-8", "ignore")
    head = _IRC_DANGLING_COLOUR.sub("", head).rstrip()
    return head + ELLIPSIS
