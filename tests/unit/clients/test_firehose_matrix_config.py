"""``[[firehose.matrix]]`` is validated like the rest, and lines become Matrix content."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.clients.firehose.lines import Colours, Fold, message_line
from notifier.clients.firehose.matrix_lines import HEX, content
from notifier.config import ConfigError, load_config

GOOD = """
[[firehose.matrix]]
homeserver = "https://matrix.example.org"
user_id = "@firehose:example.org"
access_token = "secret"
[[firehose.matrix.rooms]]
room = "#fedmsg:example.org"
method = "text"
include = {applications = ["koji"]}
"""


def test_a_good_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "notifier.toml"
    path.write_text(GOOD)
    (server,) = load_config(path).firehose.matrix
    (room,) = server.rooms
    assert server.line_rate == 1.0 and room.method == "text" and room.max_delay == 30.0
    assert room.include.applications == ("koji",)


@pytest.mark.parametrize(("change", "words"), [
    (('room = "#fedmsg:example.org"', 'room = "fedmsg"'), ["rooms[0].room", "not a room id"]),
    (('method = "text"', 'method = "shout"'), ["rooms[0].method", "notice or text"]),
    (('access_token = "secret"\n', ""), ["missing required key", "access_token"]),
    (('method = "text"', 'methd = "text"'), ["unknown key", "methd"]),
])
def test_a_bad_key_is_refused_naming_it(tmp_path: Path, change: tuple[str, str],
                                        words: list[str]) -> None:
    assert change[0] in GOOD
    path = tmp_path / "notifier.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_a_line_is_a_notice_with_its_colour_and_link_in_html() -> None:
    colours = Colours(["koji=green"])
    line = message_line({"app": "koji", "summary": "a <b> & c",
                         "link": "https://koji.example/1?a=1&b=2"}, colours, True)
    got = content(line)
    assert got["msgtype"] == "m.notice" and got["format"] == "org.matrix.custom.html"
    assert got["body"] == "[koji] a <b> & c https://koji.example/1?a=1&b=2"
    green = HEX[3]
    assert got["formatted_body"] == (
        f'<font color="{green}" data-mx-color="{green}">[koji]</font> a &lt;b&gt; &amp; c '
        '<a href="https://koji.example/1?a=1&amp;b=2">https://koji.example/1?a=1&amp;b=2</a>')
    assert content(line, "text")["msgtype"] == "m.text"


def test_a_fold_line_keeps_its_colour() -> None:
    fold = Fold("koji")
    for topic in ("org.fedoraproject.prod.buildsys.tag",) * 3:
        fold.add({"topic": topic}, 0.0)
    got = content(fold.line(Colours(["koji=red"]), True))
    assert got["body"] == "koji: 3 more (buildsys.tag ×3)"
    assert got["formatted_body"].startswith(f'<font color="{HEX[4]}"')
