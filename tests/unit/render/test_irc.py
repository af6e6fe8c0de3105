"""IRC lines: one line, no control characters from content, at most 450 bytes of UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.backends.base import Backend
from notifier.config import config_from_dict
from notifier.notification import Notification
from notifier.render import Renderer
from notifier.render.text import ELLIPSIS, irc_line, truncate_utf8

from .conftest import SECRET, render, site_config

FORMATTING = set("\x02\x03\x0f\x11\x16\x1d\x1e\x1f")


def controls(text: str) -> set[str]:
    return {c for c in text if ord(c) < 0x20 or c == "\x7f"}


def test_crlf_and_ctcp_in_content_are_stripped(renderer: Renderer) -> None:
    summary = "\x01ACTION pwns\x01 you\r\nPRIVMSG #chan :hi\rQUIT\n\x00end"
    line = render(renderer, "irc", summary=summary, app="bod\r\nhi").content["line"]
    assert not controls(line) - FORMATTING
    assert "\x01" not in line and "\r" not in line and "\n" not in line
    assert "ACTION pwns you" in line and "PRIVMSG #chan :hi" in line and "QUITend" in line
    assert line.startswith("\x02bodhi\x02 ")


def test_formatting_codes_in_content_are_stripped(renderer: Renderer) -> None:
    line = render(renderer, "irc", summary="\x0304red\x03 \x02bold\x02 \x1ditalic\x0f",
                  link=None).content["line"]
    assert line == "\x02bodhi\x02 04red bold italic"


def test_colour_codes_from_the_template_survive(renderer: Renderer) -> None:
    line = render(renderer, "irc", severity="error").content["line"]
    assert line.startswith("\x0304error\x03\x02\x02 \x02bodhi\x02 ")
    assert "\x0302https://bodhi.fedoraproject.org/" in line and line.endswith("\x03")


@pytest.mark.parametrize("char", ["é", "€", "𝄞", "日"])
def test_long_multibyte_line_is_cut_on_a_character_boundary(renderer: Renderer,
                                                            char: str) -> None:
    line = render(renderer, "irc", summary=char * 1000, app="", link=None).content["line"]
    encoded = line.encode("utf-8")  # raises if a character was split
    assert len(encoded) <= 450 and len(encoded) > 440
    assert line.endswith(ELLIPSIS)
    assert line.rstrip(ELLIPSIS).strip(char) == ""


def test_long_link_is_cut_without_leaving_half_a_colour_code(tmp_path: Path) -> None:
    (tmp_path / "irc").mkdir()
    (tmp_path / "irc" / "line.txt").write_text(
        '{{ message.summary }}{{ message.link|colour("blue") }}')
    renderer = Renderer(config_from_dict({"templates_dir": str(tmp_path)}), secret=SECRET,
                        backends={"irc": Backend})
    line = render(renderer, "irc", summary="x" * 446, link="https://e.org/").content["line"]
    # The cut fell right after the colour code: the code goes, the text stays.
    assert line == "x" * 446 + ELLIPSIS


def test_backend_max_length_makes_lines_shorter() -> None:
    class ShortIrc(Backend):
        name = "irc"
        single_line = True
        max_length = 100

        def send(self, notification: Notification) -> None:
            raise NotImplementedError

    renderer = Renderer(site_config(), secret=SECRET, backends={"irc": ShortIrc})
    line = render(renderer, "irc", summary="word " * 100).content["line"]
    assert len(line.encode()) <= 100 and line.endswith(ELLIPSIS)


def test_template_line_breaks_become_single_spaces() -> None:
    assert irc_line("  \x02a\x02\n   b\r\n\tc  \n") == "\x02a\x02 b c"
    assert irc_line("a\x01b\x00c\x07d") == "abcd"


def test_comma_after_colour_code_is_guarded(renderer: Renderer, tmp_path: Path) -> None:
    (tmp_path / "irc").mkdir()
    (tmp_path / "irc" / "line.txt").write_text(
        '{{ message.summary|colour("red") }}{{ message.app }}')
    renderer = Renderer(config_from_dict({"templates_dir": str(tmp_path)}), secret=SECRET,
                        backends={"irc": Backend})
    line = render(renderer, "irc", summary=",12 x", app="42").content["line"]
    # ",12" must not be read as a background colour, "42" not as a colour number.
    assert line == "\x0304\x02\x02,12 x\x03\x02\x0242"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=4, max_value=500))
def test_truncate_utf8_never_splits_and_never_overflows(text: str, max_bytes: int) -> None:
    cut = truncate_utf8(text, max_bytes)
    assert len(cut.encode("utf-8")) <= max_bytes
    if len(text.encode("utf-8")) <= max_bytes:
        assert cut == text
    else:
        assert cut.endswith(ELLIPSIS)
        assert text.startswith(cut[: -len(ELLIPSIS)])
