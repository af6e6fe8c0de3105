"""Mail headers as mail software reads them: rendered, built, written, parsed back.

Each mail is parsed from the bytes the backend writes with the standard
library's parser (policy.default), as a mail reader would.
"""

from __future__ import annotations

import email.policy
import re
from email import message_from_bytes
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier.backends.email import _as_bytes, build_message
from notifier.backends.mailheaders import header_line
from notifier.config import EmailConfig
from notifier.notification import Notification
from notifier.render import Renderer
from notifier.render.text import LINE_MAX_CHARS, single_line
from tests.unit.render.conftest import BACKENDS, SECRET, USER, described_message, envelope_for
from tests.unit.render.conftest import site_config as render_site_config

SETTINGS = EmailConfig(from_address="notifier@example.org", list_id="notifications.example.org")
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
LOOKALIKE = "=?UTF-8?B?ZXZpbA==?="  # "evil", were it decoded


def wire(notification: Notification, international: bool = False) -> bytes:
    return _as_bytes(build_message(notification, SETTINGS), smtp=True,
                     international=international)


def head(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def field(lines: list[bytes], name: bytes) -> list[bytes]:
    """The lines of header ``name``: its own and the folded ones after it."""
    start = next(i for i, line in enumerate(lines) if line.startswith(name + b":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return lines[start:end]


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


class _Title(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.title = ""
        self.aligned: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "title"
        self.aligned += [tag for name, _ in attrs if name == "align"]

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.title += data


def html_of(message: EmailMessage) -> _Title:
    part = message.get_body(("html",))
    assert isinstance(part, EmailMessage)
    parser = _Title()
    parser.feed(part.get_content())
    return parser


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(render_site_config(), secret=SECRET, backends=BACKENDS)


def rendered_mail(renderer: Renderer, summary: str) -> Notification:
    described = described_message(summary=summary)
    return renderer.render("email", described, envelope_for(described), USER,
                           ["my packages"], "bob@example.org")


LONG_SUMMARIES = [
    "Zoë’s update für python-ünïcode ✓ " * 12,            # mostly Latin with accents
    "漢字のテスト " * 60,                                   # no ASCII at all
    "plain words only, and quite a few of them " * 10,     # plain ASCII
    "🚀" * 300,                                              # 4-byte characters
    f"{LOOKALIKE} your account was closed " + "ü " * 150,   # a lookalike, then a long tail
]


@pytest.mark.parametrize("summary", LONG_SUMMARIES)
def test_long_subjects_fold_at_78_with_encoded_words_of_at_most_75(
        renderer: Renderer, summary: str) -> None:
    notification = rendered_mail(renderer, summary)
    subject = notification.content["subject"]
    assert len(subject) == LINE_MAX_CHARS  # cut, as every long Subject is
    data = wire(notification)
    assert data.isascii()
    lines = head(data)
    # A URL (List-Unsubscribe's) cannot be broken: it keeps a line of its own.
    assert all(len(line) <= 78 or len(line.split()) <= 2 for line in lines)
    subject_lines = field(lines, b"Subject")
    assert len(subject_lines) > 1 and all(len(line) <= 78 for line in subject_lines)
    words = ENCODED_WORD.findall(b"\r\n".join(lines))
    assert all(len(word) <= 75 for word in words), max(words, key=len)
    message = parse(data)
    assert message["Subject"] == subject
    # The HTML title is the Subject as sent, not the whole summary.
    assert html_of(message).title == subject


@pytest.mark.parametrize("international", [False, True], ids=["ascii", "smtputf8"])
@pytest.mark.parametrize("summary", [
    LOOKALIKE,
    f"Your build {LOOKALIKE} finished",
    f"für {LOOKALIKE}",
    f"{LOOKALIKE}{LOOKALIKE}",
    "=?utf-8?q?Urgent=3A_reset_your_password?=",
    "x=?utf-8?q?y?=z",
])
def test_text_that_looks_encoded_is_shown_as_written(renderer: Renderer, summary: str,
                                                     international: bool) -> None:
    notification = rendered_mail(renderer, summary)
    data = wire(notification, international=international)
    message = parse(data)
    assert message["Subject"] == f"[bodhi] {summary}"
    assert "evil" not in message["Subject"]
    assert LOOKALIKE.encode() not in data.split(b"\r\n\r\n", 1)[0]


def test_digest_title_is_its_subject_and_cells_align_with_css(renderer: Renderer) -> None:
    items = [rendered_mail(renderer, f"item {i} " + "ä" * 40) for i in range(3)]
    digest = renderer.render_digest("email", USER, items, "bob@example.org")
    message = parse(wire(digest))
    assert html_of(message).title == message["Subject"] == digest.content["subject"]
    mail = parse(wire(rendered_mail(renderer, "short")))
    assert html_of(mail).aligned == []
    html = mail.get_body(("html",))
    assert isinstance(html, EmailMessage)
    assert 'style="text-align: left"' in html.get_content()


# Text as the renderer leaves it for a header: one line, single spaces, no controls.
_ALPHABET = st.sampled_from(list("abcXYZ09 .,:;!?=_-()<>\"'@/\\") +
                            ["=?", "?=", "?q?", "?B?", "ü", "ß", "é", "–", "’", "漢", "字",
                             "🚀", "\u200b", "\u00a0"])
header_text = st.lists(_ALPHABET, max_size=300).map(
    lambda parts: single_line("".join(parts), None))


@settings(max_examples=300, deadline=None)
@given(text=header_text, international=st.booleans(),
       name=st.sampled_from(["Subject", "X-Notifier-Rule", "X-Notifier-Package"]))
@example(text=LOOKALIKE, international=False, name="Subject")
@example(text="a" * 300, international=False, name="Subject")
def test_any_text_reads_back_exactly_and_within_the_limits(
        text: str, international: bool, name: str) -> None:
    field = header_line(name, text, international)
    data = field.replace(b"\n", b"\r\n") + b"\r\n"
    assert data.isascii() or international
    for line in field.rstrip(b"\n").split(b"\n"):
        # Only a word that cannot be broken may pass 78 characters.
        assert len(line) <= 78 or len(line.split()) <= 2, line
        assert line.strip(), field  # no line of blanks
    assert all(len(word) <= 75 for word in ENCODED_WORD.findall(field))
    assert parse(data)[name] == text
