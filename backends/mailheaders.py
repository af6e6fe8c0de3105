"""Header fields on the wire, as mail software reads them.

* Lines are folded at 78 characters (RFC 5322 2.1.1), at spaces. A word
  that cannot be broken (a long URL) keeps its own line, up to the hard
  limit of 998; only a word longer than that is cut into encoded words.
* Text that needs encoding becomes RFC 2047 encoded words of at most 75
  characters, in UTF-8 with Q or B, whichever is shorter, never splitting
  a character. Text with no such need is written as it is, so addresses
  and URLs stay readable and followable.
* A word that looks like an encoded word (``=?UTF-8?B?ZXZpbA==?=``) is
  itself encoded, so that a mail reader shows those very characters rather
  than what they would decode to: published text cannot disguise itself as
  something else in a Subject.
* Structured fields (addresses, dates, message ids) are written by the
  email package when they are not in a form it would write back unchanged.

With ``international`` (an SMTPUTF8 transaction, RFC 6532) non-ASCII text is
written as raw UTF-8 instead of encoded words.
"""

from __future__ import annotations

import base64
import email.policy
import re
from email.utils import format_datetime, parsedate_to_datetime

#: RFC 5322: lines SHOULD be at most 78 characters, and MUST be at most 998
MAX_LINE = 78
HARD_LINE = 998
#: RFC 2047: an encoded word is at most 75 characters
MAX_ENCODED_WORD = 75

# The email package writes structured fields; at 76 its encoded words stay within 75.
_POLICY_ASCII = email.policy.SMTP.clone(linesep="\n", max_line_length=76)
_POLICY_UTF8 = email.policy.SMTPUTF8.clone(linesep="\n", max_line_length=76)

#: header names (lowercase) the email package parses as structured values (addresses,
#: dates, ids, MIME parameters) rather than as plain text; see HeaderRegistry
STRUCTURED = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc",
    "resent-bcc", "resent-sender", "date", "resent-date", "orig-date", "message-id",
    "mime-version", "content-type", "content-disposition", "content-transfer-encoding"})
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = rf"{_DOT_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
#: structured values the email package writes back exactly as given: a bare address,
#: a display name of plain words before an address, a message id
_VERBATIM = {
    "from": re.compile(rf"{_ADDR_SPEC}|{_ATEXT}+(?: {_ATEXT}+)* <{_ADDR_SPEC}>"),
    "to": re.compile(rf"{_ADDR_SPEC}|{_ATEXT}+(?: {_ATEXT}+)* <{_ADDR_SPEC}>"),
    "message-id": re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>"),
}

_PREFIX = "=?utf-8?"
_SUFFIX = "?="
_OVERHEAD = len(_PREFIX) + len("q?") + len(_SUFFIX)
#: the characters Q encoding may leave as they are anywhere in a header (RFC 2047 5(3))
_Q_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
#: the least room worth starting an encoded word in: one 4-byte character in Q
_MIN_ENCODED_WORD = _OVERHEAD + 12


def header_line(name: str, value: str, international: bool = False) -> bytes:
    """``name: value`` as one header field, folded and encoded, ending in ``\\n``.

    Raises ValueError, TypeError or :class:`email.errors.MessageError` for a
    structured value the email package cannot encode.
    """
    lowered = name.lower()
    plain = value.isprintable() and (international or value.isascii())
    if lowered not in STRUCTURED:
        if plain and "=?" not in value and len(name) + 2 + len(value) <= MAX_LINE:
            return f"{name}: {value}\n".encode() if value else f"{name}:\n".encode()
        return fold_text(name, value, international).encode()
    if plain and len(name) + 2 + len(value) <= HARD_LINE:
        if lowered == "date" and _canonical_date(value):
            return f"{name}: {value}\n".encode()
        pattern = _VERBATIM.get(lowered)
        if pattern is not None and pattern.fullmatch(value):
            return f"{name}: {value}\n".encode()
    policy = _POLICY_UTF8 if international else _POLICY_ASCII
    return policy.fold_binary(name, policy.header_factory(name, value))


def _canonical_date(value: str) -> bool:
    """Whether ``value`` is a date exactly as the email package writes it back."""
    try:
        return format_datetime(parsedate_to_datetime(value)) == value
    except (ValueError, TypeError):
        return False


def fold_text(name: str, value: str, international: bool = False) -> str:
    """An unstructured field (RFC 5322 ``unstructured``), folded and encoded; see the module."""
    words = _words(value)
    limit = HARD_LINE - len(name) - 2
    lines: list[str] = []
    line = f"{name}:"
    i = 0
    while i < len(words):
        if not _needs_encoding(words[i], international, limit):
            word = words[i]
            # A fold before a word of spaces alone would leave a line of only spaces.
            if i and len(line) + 1 + len(word) > MAX_LINE and word.strip(" "):
                lines.append(line)
                line = ""
            line += " " + word
            i += 1
            continue
        # A run of words to encode is encoded whole: the spaces between encoded
        # words are dropped by readers, so they go inside.
        end = i + 1
        while end < len(words) and _needs_encoding(words[end], international, limit):
            end += 1
        text = " ".join(words[i:end])
        encode = _q_encode if _q_length(text) <= _b_length(text) else _b_encode
        pos = 0
        while pos < len(text):
            room = min(MAX_ENCODED_WORD, MAX_LINE - len(line) - 1)
            if room < _MIN_ENCODED_WORD and (lines or len(line) > len(name) + 1):
                lines.append(line)
                line = ""
                room = MAX_ENCODED_WORD
            word, pos = encode(text, pos, room - _OVERHEAD)
            line += " " + word
        i = end
    lines.append(line)
    return "\n".join(lines) + "\n"


def _words(value: str) -> list[str]:
    """``value`` split at single spaces; extra spaces stay at the start of the next word."""
    words: list[str] = []
    pending = ""
    for part in value.split(" "):
        if part:
            words.append(pending + part)
            pending = ""
        else:
            pending += " "
    if pending:
        # spaces at the end, or only spaces: the last one was a separator
        words.append(pending[:-1])
    return words


def _needs_encoding(word: str, international: bool, limit: int) -> bool:
    return ("=?" in word or not word.isprintable()
            or not (international or word.isascii())
            or len(word.encode("utf-8")) > limit)


def _q_char(char: str) -> str:
    if char in _Q_SAFE:
        return char
    if char == " ":
        return "_"
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def _q_length(text: str) -> int:
    return sum(len(_q_char(char)) for char in text)


def _b_length(text: str) -> int:
    return -(-len(text.encode("utf-8")) // 3) * 4


def _q_encode(text: str, pos: int, room: int) -> tuple[str, int]:
    """One Q encoded word from ``text[pos:]`` of at most ``room`` encoded characters."""
    out: list[str] = []
    used = 0
    while pos < len(text):
        piece = _q_char(text[pos])
        if used + len(piece) > room and out:
            break
        out.append(piece)
        used += len(piece)
        pos += 1
    return f"{_PREFIX}q?{''.join(out)}{_SUFFIX}", pos


def _b_encode(text: str, pos: int, room: int) -> tuple[str, int]:
    """One B encoded word from ``text[pos:]`` of at most ``room`` encoded characters."""
    most = room // 4 * 3  # bytes whose base64 fits
    data = b""
    while pos < len(text):
        char = text[pos].encode("utf-8")
        if len(data) + len(char) > most and data:
            break
        data += char
        pos += 1
    return f"{_PREFIX}b?{base64.b64encode(data).decode('ascii')}{_SUFFIX}", pos
