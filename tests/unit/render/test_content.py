"""Message content is data: never evaluated, escaped in HTML, links limited to http(s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.backends.base import Backend
from notifier.errors import ConfigError, InputError
from notifier.notification import Notification
from notifier.render import Renderer

from .conftest import SECRET, USER, described_message, render, site_config

TEMPLATE_LOOKALIKES = "{{ 7*7 }} {% for x in range(3) %}x{% endfor %} {# c #} ${HOME}"


@pytest.mark.parametrize("destination", ["email", "irc", "rss", "desktop", "matrix"])
def test_template_syntax_in_content_stays_literal(renderer: Renderer, destination: str) -> None:
    n = render(renderer, destination, summary=TEMPLATE_LOOKALIKES, agent="{{ user.name }}")
    rendered = " ".join(n.content.values())
    assert "{{ 7*7 }}" in rendered and "49" not in rendered
    assert "{% for x in range(3) %}x{% endfor %}" in rendered and "xxx" not in rendered
    if destination not in ("irc", "matrix"):  # the IRC line and the notice show no agent
        assert "{{ user.name }}" in rendered


def test_script_in_summary_is_escaped_in_html(renderer: Renderer) -> None:
    evil = '<script>alert("x")</script> & <b onclick=1>'
    email = render(renderer, "email", summary=evil, packages=["<img src=x>"])
    for html in (email.content["html"], render(renderer, "rss", summary=evil).content["content"]):
        assert "<script>" not in html and "<b onclick" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b onclick=1&gt;" in html
    assert "<img src=x>" not in email.content["html"]
    # Plain text parts are not escaped.
    assert evil in email.content["text"]
    assert email.content["subject"].endswith(evil)


def test_desktop_body_is_markup_with_escaped_content(renderer: Renderer) -> None:
    n = render(renderer, "desktop", agent="<i>mallory</i> & co", summary="a <b> c")
    assert n.content["body"].startswith("<b>&lt;i&gt;mallory&lt;/i&gt; &amp; co</b> in bodhi")
    # The summary is plain text in the D-Bus spec: not escaped.
    assert n.content["summary"] == "bodhi: a <b> c"


def test_desktop_body_is_plain_text_when_backend_takes_no_markup() -> None:
    class PlainDesktop(Backend):
        name = "desktop"
        markup = None
        max_length = 40

        def send(self, notification: Notification) -> None:
            raise NotImplementedError

    renderer = Renderer(site_config(), secret=SECRET, backends={"desktop": PlainDesktop})
    body = render(renderer, "desktop", agent="<i>mallory</i>",
                  packages=["a-very-long-package-name-indeed"]).content["body"]
    assert body.startswith("<i>mallory</i> in bodhi")
    assert len(body.encode()) <= 40 and body.endswith("…")


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,<b>x</b>",
                                  " JaVaScRiPt:alert(1)", "file:///etc/passwd", 42])
def test_links_other_than_http_are_dropped(renderer: Renderer, link: object) -> None:
    n = render(renderer, "email", link=link)
    assert n.link is None
    assert "href" not in n.content["html"].split("<hr>")[0]
    assert "alert" not in n.content["html"]


def test_notification_fields(renderer: Renderer) -> None:
    n = render(renderer, "rss", rules=("a", "b"), timestamp=1714560000.5)
    described = described_message()
    assert (n.user, n.destination, n.address) == ("bob", "rss", "bob@example.org")
    assert (n.msg_id, n.topic, n.app) == (described["msg_id"], described["topic"], "bodhi")
    assert n.rules == ("a", "b") and n.link == described["link"] and n.icon == described["icon"]
    assert (n.severity, n.timestamp) == ("info", 1714560000.5)
    # Only email carries headers; other destinations keep the package for digests.
    assert n.headers == {"X-Notifier-Package": "python-requests"}
    assert render(renderer, "rss", packages=[]).headers == {}
    assert Notification.from_dict(n.to_dict()) == n


def test_matrix_gets_a_plain_body_and_escaped_html(renderer: Renderer) -> None:
    evil = '<script>alert("x")</script> & <b onclick=1>'
    n = render(renderer, "matrix", summary=evil)
    assert set(n.content) == {"body", "html"}
    assert evil in n.content["body"]
    assert "<script>" not in n.content["html"] and "<b onclick" not in n.content["html"]
    assert "&lt;script&gt;" in n.content["html"]


def test_control_characters_never_reach_text_or_html(renderer: Renderer) -> None:
    n = render(renderer, "email", summary="bell\x07 nul\x00 esc\x1b[31m del\x7f end")
    assert n.content["subject"] == "[bodhi] bell nul esc [31m del end"
    for part in ("text", "html"):
        assert not any(c in n.content[part] for c in "\x00\x07\x1b\x7f\r")


@pytest.mark.parametrize("destination", ["slack", "digest"])
def test_unknown_destination_is_a_config_error(renderer: Renderer, destination: str) -> None:
    with pytest.raises(ConfigError, match=f"no templates for destination '{destination}'"):
        render(renderer, destination)


def test_message_without_msg_id_is_an_input_error(renderer: Renderer) -> None:
    described = described_message(msg_id=None)
    with pytest.raises(InputError, match="no msg_id"):
        renderer.render("irc", described, {"topic": "t"}, USER, [], "bob")


def test_user_without_name_is_an_input_error(renderer: Renderer) -> None:
    with pytest.raises(InputError, match="without a 'name'"):
        render(renderer, "irc", user={"emails": []})


def test_secret_must_be_given() -> None:
    with pytest.raises(ConfigError, match="secret"):
        Renderer(site_config(), secret=b"")


def test_capabilities_come_from_the_registered_backends() -> None:
    from notifier.backends.registry import backend_class

    renderer = Renderer(site_config(), secret=SECRET)
    line = render(renderer, "irc", summary="€" * 600).content["line"]
    assert len(line.encode()) <= min(450, backend_class("irc").max_length or 450)
    body = render(renderer, "desktop", agent="<i>x</i>").content["body"]
    if backend_class("desktop").markup in ("pango", "html"):
        assert body.startswith("<b>&lt;i&gt;x&lt;/i&gt;</b>")
    else:
        assert body.startswith("<i>x</i>")


def test_feed_url_in_context(tmp_path: Path) -> None:
    (tmp_path / "irc").mkdir()
    (tmp_path / "irc" / "line.txt").write_text("{{ feed_url }}")
    renderer = Renderer(site_config(templates_dir=str(tmp_path)), secret=SECRET,
                        backends={"irc": Backend})
    user = {**USER, "name": "jo ann", "feed_token": "a/b"}
    line = render(renderer, "irc", user=user).content["line"]
    assert line == "https://notify.example.org/feeds/jo%20ann.atom?token=a%2Fb"
    assert render(renderer, "irc", user={"name": "x"}).content["line"] == ""
