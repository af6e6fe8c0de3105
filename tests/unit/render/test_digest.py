"""Digests: grouped by app then package, with counts, newest first, as one mail."""

from __future__ import annotations

import pytest

from notifier.errors import ConfigError, InputError
from notifier.notification import Notification
from notifier.render import Renderer
from notifier.render.digest import group_items, headline

from .conftest import USER, render

T0 = 1714560000

# (msg_id, app, packages, minutes after T0, severity)
HELD = [
    ("m1", "bodhi", ["python-requests"], 0, "info"),
    ("m2", "koji", ["kernel"], 1, "info"),
    ("m3", "bodhi", ["python-requests"], 2, "warning"),
    ("m4", "bodhi", [], 3, "info"),
    ("m5", "Koji", ["glibc"], 4, "info"),
    ("m6", "bodhi", ["python-urllib3", "python-requests"], 5, "info"),
]


def held(renderer: Renderer, rules: tuple[str, ...] = ("my-packages",)) -> list[Notification]:
    return [render(renderer, "email", rules=rules, msg_id=msg_id, app=app, packages=packages,
                   summary=f"{app} message {msg_id}", timestamp=T0 + 60 * minutes,
                   severity=severity)
            for msg_id, app, packages, minutes, severity in HELD]


def test_grouping_counts_and_order(renderer: Renderer) -> None:
    groups = group_items(held(renderer))
    summary = [(g["app"], g["count"], [(p["package"], p["count"],
                                        [i["msg_id"] for i in p["notifications"]])
                                       for p in g["packages"]])
               for g in groups]
    assert summary == [
        ("bodhi", 4, [("python-urllib3", 1, ["m6"]), (None, 1, ["m4"]),
                      ("python-requests", 2, ["m3", "m1"])]),
        ("Koji", 2, [("glibc", 1, ["m5"]), ("kernel", 1, ["m2"])]),
    ]


def test_digest_mail(renderer: Renderer) -> None:
    items = held(renderer)
    digest = renderer.render_digest("email", USER, items, "bob@example.org")
    assert digest.content["subject"] == "[notifier] 6 notifications: bodhi (4), Koji (2)"
    text = digest.content["text"]
    order = ["== bodhi (4) ==", "python-urllib3 (1)", "bodhi message m6", "other (1)",
             "bodhi message m4", "python-requests (2)", "bodhi message m3", "bodhi message m1",
             "== Koji (2) ==", "glibc (1)", "Koji message m5", "kernel (1)", "koji message m2"]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert "[bodhi]" not in text  # the app tag of each subject is dropped
    html = digest.content["html"]
    assert "<h2>bodhi (4)</h2>" in html and "<h3>python-requests (2)</h3>" in html
    assert html.index("<h2>bodhi (4)</h2>") < html.index("<h2>Koji (2)</h2>")
    assert (digest.user, digest.address, digest.destination) == ("bob", "bob@example.org",
                                                                 "email")
    assert digest.timestamp == T0 + 300 and digest.severity == "warning"
    assert digest.headers["X-Notifier-Digest"] == "6"
    assert digest.headers["List-Unsubscribe"].startswith("<https://notify.example.org/")


def test_digest_is_stable_and_order_independent(renderer: Renderer) -> None:
    items = held(renderer)
    first = renderer.render_digest("email", USER, items, "bob@example.org")
    again = renderer.render_digest("email", USER, list(reversed(items)), "bob@example.org")
    assert first == again
    fewer = renderer.render_digest("email", USER, items[1:], "bob@example.org")
    assert fewer.msg_id != first.msg_id
    assert fewer.headers["Message-ID"] != first.headers["Message-ID"]


def test_digest_with_several_rules_has_no_unsubscribe_link(renderer: Renderer) -> None:
    items = held(renderer)[:2] + held(renderer, rules=("mentions", "my-packages"))[2:]
    digest = renderer.render_digest("email", USER, items, "bob@example.org")
    assert "List-Unsubscribe" not in digest.headers
    assert digest.headers["X-Notifier-Rule"] == "my-packages, mentions"
    assert digest.rules == ("my-packages", "mentions")


def test_single_item_digest_reads_well(renderer: Renderer) -> None:
    digest = renderer.render_digest("email", USER, held(renderer)[:1], "bob@example.org")
    assert digest.content["subject"] == "[notifier] 1 notification: bodhi (1)"
    assert digest.content["text"].startswith("1 notification, ")


def test_headline_prefers_subject_then_other_parts(renderer: Renderer) -> None:
    irc = render(renderer, "irc", summary="from irc")
    assert headline(irc).startswith("bodhi from irc")
    rss = render(renderer, "rss", summary="from rss")
    assert headline(rss) == "from rss"


def test_digest_needs_items(renderer: Renderer) -> None:
    with pytest.raises(InputError, match="at least one"):
        renderer.render_digest("email", USER, [], "bob@example.org")


def held_on(renderer: Renderer, destination: str) -> list[Notification]:
    return [render(renderer, destination, msg_id=msg_id, app=app, packages=packages,
                   summary=f"{app} message {msg_id}", timestamp=T0 + 60 * minutes)
            for msg_id, app, packages, minutes, _severity in HELD]


def test_digest_on_irc_is_one_safe_line(renderer: Renderer) -> None:
    items = held_on(renderer, "irc")
    assert group_items(items)[0]["packages"][0]["package"] == "python-urllib3"
    digest = renderer.render_digest("irc", {**USER, "name": "bo\r\nb"}, items, "bob")
    assert digest.content == {"line": "[notifier] 6 notifications: bodhi (4), Koji (2)"}
    assert (digest.destination, digest.address, digest.headers) == ("irc", "bob", {})


def test_digest_in_a_feed_is_preformatted_text(renderer: Renderer) -> None:
    digest = renderer.render_digest("rss", USER, held_on(renderer, "rss"), "bob")
    assert digest.content["title"] == "[notifier] 6 notifications: bodhi (4), Koji (2)"
    content = digest.content["content"]
    assert content.startswith("<pre>6 notifications, ") and content.endswith("</pre>")
    assert "python-requests (2)" in content


def test_digest_on_the_desktop_escapes_the_body_for_markup(renderer: Renderer) -> None:
    items = held_on(renderer, "desktop")
    items.append(render(renderer, "desktop", msg_id="m9", summary="a <b> & c",
                        timestamp=T0 + 3600))
    digest = renderer.render_digest("desktop", USER, items, "bob")
    assert digest.content["summary"].startswith("[notifier] 7 notifications")
    assert "bodhi: a &lt;b&gt; &amp; c" in digest.content["body"]
    assert "<b>" not in digest.content["body"]


def test_digest_on_matrix_has_a_plain_body_and_escaped_html(renderer: Renderer) -> None:
    items = held_on(renderer, "matrix")
    items.append(render(renderer, "matrix", msg_id="m9", summary="a <b> & c",
                        timestamp=T0 + 3600))
    digest = renderer.render_digest("matrix", USER, items, "@bob:example.org")
    assert digest.address == "@bob:example.org"
    assert digest.content["body"].startswith("[notifier] 7 notifications")
    assert "bodhi: a <b> & c" in digest.content["body"]
    assert "bodhi: a &lt;b&gt; &amp; c" in digest.content["html"]
    assert "<b> & c" not in digest.content["html"]


def test_digest_for_unknown_destination_is_a_config_error(renderer: Renderer) -> None:
    with pytest.raises(ConfigError, match="no templates for destination 'slack'"):
        renderer.render_digest("slack", USER, held(renderer), "bob")


def test_mail_and_digest_share_the_footer(renderer: Renderer) -> None:
    mail = render(renderer, "email", rules=("my-packages",))
    digest = renderer.render_digest("email", USER, [mail], "bob@example.org")
    for notification in (mail, digest):
        text, page = notification.content["text"], notification.content["html"]
        assert text.count("Your notification settings: https://notify.example.org") == 1
        assert "You receive this because of your rule my-packages." in text
        assert 'Turn off "my-packages": https://notify.example.org/unsubscribe/' in text
        assert page.count(">Your notification settings</a>") == 1
        assert page.rstrip().endswith("</html>")
