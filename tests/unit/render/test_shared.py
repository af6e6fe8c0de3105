"""Rendering one message for many recipients: what reads nothing about them is rendered once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifier.config import config_from_dict
from notifier.notification import Notification
from notifier.render import Renderer, verify_unsubscribe_token

from .conftest import BACKENDS, SECRET, USER, described_message, envelope_for, site_config

ALICE = {"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice_"],
         "groups": [], "delivery": {"email": "instant"}, "feed_token": "a11ce"}
BOB = USER


def render_for(renderer: Renderer, destination: str, user: dict[str, Any],
               rules: list[str], shared: dict[str, Any] | None, **changes: Any
               ) -> Notification:
    described = described_message(**changes)
    return renderer.render(destination, described, envelope_for(described), user, rules,
                           f"{user['name']}@example.org", shared=shared)


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def site_renderer(tmp_path: Path) -> Renderer:
    config = config_from_dict({"http": {"base_url": "https://notify.example.org/"},
                               "templates_dir": str(tmp_path)})
    return Renderer(config, secret=SECRET, backends=BACKENDS)


class CountingRenderer(Renderer):
    """Counts how many templates were run."""

    runs = 0

    def _render_parts(self, plan: Any, app: str, context: dict[str, Any], user: str,
                      unsubscribe_rule: str | None) -> dict[str, str]:
        self.runs += len(plan)
        return super()._render_parts(plan, app, context, user, unsubscribe_rule)


def counting_renderer() -> CountingRenderer:
    return CountingRenderer(site_config(), secret=SECRET, backends=BACKENDS)


def test_email_keeps_every_recipients_own_footer(renderer: Renderer) -> None:
    assert renderer.shareable("email", "bodhi") is False
    shared: dict[str, Any] = {}
    bob = render_for(renderer, "email", BOB, ["my-packages"], shared)
    alice = render_for(renderer, "email", ALICE, ["group-rule", "other"], shared)
    assert "email" not in shared  # nothing kept for the others
    for n, user, rule in [(bob, "bob", "my-packages"), (alice, "alice", "group-rule")]:
        url = n.headers["List-Unsubscribe"].strip("<>")
        assert url in n.content["text"] and url in n.content["html"]
        assert verify_unsubscribe_token(SECRET, url.rsplit("/", 1)[1]) == (user, rule)
    assert bob.headers["List-Unsubscribe"] != alice.headers["List-Unsubscribe"]
    assert bob.headers["List-Unsubscribe"].strip("<>") not in alice.content["text"]
    assert "rule my-packages." in bob.content["text"]
    assert "rules group-rule, other." in alice.content["text"]
    # The message itself is the same for both.
    assert bob.content["subject"] == alice.content["subject"]
    assert (bob.user, bob.address) == ("bob", "bob@example.org")
    assert (alice.user, alice.address) == ("alice", "alice@example.org")


def test_email_with_shared_is_what_it_is_without(renderer: Renderer) -> None:
    alone = render_for(renderer, "email", ALICE, ["r"], None)
    render_for(renderer, "email", BOB, ["my-packages"], shared := {})
    with_shared = render_for(renderer, "email", ALICE, ["r"], shared)
    assert with_shared == alone


@pytest.mark.parametrize("destination", ["rss", "irc", "desktop"])
def test_content_that_reads_nothing_about_the_user_is_the_same_for_all(
        renderer: Renderer, destination: str) -> None:
    assert renderer.shareable(destination, "bodhi") is True
    shared: dict[str, Any] = {}
    bob = render_for(renderer, destination, BOB, ["my-packages"], shared)
    assert shared[destination] == bob.content
    alice = render_for(renderer, destination, ALICE, ["other"], shared)
    assert alice.content == bob.content
    # ... and the same as rendering it for that user alone.
    assert alice.content == render_for(renderer, destination, ALICE, ["other"], None).content
    # The rest of the notification is still the recipient's.
    assert (alice.user, alice.address, alice.rules) == ("alice", "alice@example.org",
                                                        ("other",))
    assert (bob.user, bob.rules) == ("bob", ("my-packages",))


def test_shared_content_is_rendered_once_per_message() -> None:
    renderer = counting_renderer()
    users = [BOB, ALICE, {"name": "carol"}]
    shared: dict[str, Any] = {}
    for user in users:
        render_for(renderer, "rss", user, ["r"], shared)
    assert renderer.runs == 2  # title and content, once
    for user in users:
        render_for(renderer, "email", user, ["r"], shared)
    assert renderer.runs == 2 + 3 * 3  # subject, text and html for each recipient
    renderer.runs = 0
    for user in users:
        render_for(renderer, "rss", user, ["r"], None)
    assert renderer.runs == 2 * 3  # without shared: every time


def test_one_shared_dict_holds_each_destination_apart(renderer: Renderer) -> None:
    shared: dict[str, Any] = {}
    rss = render_for(renderer, "rss", BOB, ["r"], shared)
    irc = render_for(renderer, "irc", BOB, ["r"], shared)
    assert set(shared) == {"rss", "irc"}
    assert set(rss.content) == {"title", "content"} and set(irc.content) == {"line"}
    assert render_for(renderer, "rss", ALICE, ["r"], shared).content == rss.content
    assert render_for(renderer, "irc", ALICE, ["r"], shared).content == irc.content


def test_each_recipient_gets_a_copy_of_the_shared_content(renderer: Renderer) -> None:
    shared: dict[str, Any] = {}
    bob = render_for(renderer, "rss", BOB, ["r"], shared)
    alice = render_for(renderer, "rss", ALICE, ["r"], shared)
    assert bob.content is not alice.content
    assert bob.content is not shared["rss"] and alice.content is not shared["rss"]
    kept = dict(shared["rss"])
    bob.content["title"] = "changed"  # type: ignore[index]
    assert shared["rss"] == kept and alice.content == kept


@pytest.mark.parametrize("name, template", [
    ("user", "{{ message.summary }} for {{ user.name }}"),
    ("address", "{{ message.summary }} to {{ address }}"),
    ("rules", "{{ message.summary }} by {{ rules|join(',') }}"),
    ("feed_url", "{{ message.summary }} <{{ feed_url }}>"),
    ("unsubscribe_url", "{{ message.summary }} {{ unsubscribe_url }}"),
])
def test_site_template_that_reads_the_recipient_is_rendered_for_each(
        tmp_path: Path, name: str, template: str) -> None:
    write(tmp_path, "irc/line.txt", template)
    renderer = site_renderer(tmp_path)
    assert renderer.shareable("irc", "bodhi") is False
    assert renderer.shareable("rss", "bodhi") is True  # untouched destinations still share
    shared: dict[str, Any] = {}
    bob = render_for(renderer, "irc", BOB, ["bob-rule"], shared)
    alice = render_for(renderer, "irc", ALICE, ["alice-rule"], shared)
    assert "irc" not in shared
    assert bob.content["line"] != alice.content["line"]
    assert bob.content == render_for(renderer, "irc", BOB, ["bob-rule"], None).content


def test_per_recipient_part_of_a_site_template_is_each_recipients_own(tmp_path: Path) -> None:
    write(tmp_path, "rss/title.txt", "[{{ message.app }}] for {{ user.name }}")
    renderer = site_renderer(tmp_path)
    shared: dict[str, Any] = {}
    bob = render_for(renderer, "rss", BOB, ["r"], shared)
    alice = render_for(renderer, "rss", ALICE, ["r"], shared)
    assert bob.content["title"] == "[bodhi] for bob"
    assert alice.content["title"] == "[bodhi] for alice"
    # Sharing is all of a destination's parts or none: the other part, which does not
    # read the user, is rendered for each too (and comes out the same).
    assert "rss" not in shared
    assert bob.content["content"] == alice.content["content"]


def test_shareable_is_per_app(tmp_path: Path) -> None:
    write(tmp_path, "rss/bodhi.title.txt", "{{ message.summary }} ({{ user.name }})")
    renderer = site_renderer(tmp_path)
    assert renderer.shareable("rss", "bodhi") is False
    assert renderer.shareable("rss", "koji") is True
    shared_bodhi: dict[str, Any] = {}
    titles = {render_for(renderer, "rss", u, ["r"], shared_bodhi).content["title"]
              for u in (BOB, ALICE)}
    assert titles == {f"{described_message()['summary']} (bob)",
                      f"{described_message()['summary']} (alice)"}
    shared_koji: dict[str, Any] = {}
    koji = [render_for(renderer, "rss", u, ["r"], shared_koji, app="koji") for u in (BOB, ALICE)]
    assert "rss" in shared_koji and koji[0].content == koji[1].content


def test_reading_the_recipient_through_an_include_counts(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt", '{{ message.summary }}{% include "irc/who.txt" %}')
    write(tmp_path, "irc/who.txt", " ({{ user.name }})")
    renderer = site_renderer(tmp_path)
    assert renderer.shareable("irc", "bodhi") is False
    shared: dict[str, Any] = {}
    assert render_for(renderer, "irc", BOB, ["r"], shared).content["line"].endswith("(bob)")
    assert render_for(renderer, "irc", ALICE, ["r"], shared).content["line"].endswith(
        "(alice)")


def test_a_template_whose_includes_cannot_be_known_is_not_shared(tmp_path: Path) -> None:
    write(tmp_path, "irc/line.txt",
          '{{ message.summary }}{% include "irc/" ~ message.app ~ ".inc" %}')
    write(tmp_path, "irc/bodhi.inc", " [{{ user.name }}]")
    renderer = site_renderer(tmp_path)
    assert renderer.shareable("irc", "bodhi") is False
    shared: dict[str, Any] = {}
    assert render_for(renderer, "irc", BOB, ["r"], shared).content["line"].endswith("[bob]")
    assert render_for(renderer, "irc", ALICE, ["r"], shared).content["line"].endswith(
        "[alice]")


def test_templates_that_only_read_the_message_are_shared(tmp_path: Path) -> None:
    # base_url, destination, timestamp and the envelope are the same for every recipient.
    write(tmp_path, "irc/line.txt",
          "{{ message.summary }} {{ base_url }} {{ destination }} {{ timestamp }} "
          "{{ envelope.msg_id }}")
    renderer = site_renderer(tmp_path)
    assert renderer.shareable("irc", "bodhi") is True
    shared: dict[str, Any] = {}
    bob = render_for(renderer, "irc", BOB, ["r"], shared)
    assert render_for(renderer, "irc", ALICE, ["r"], shared).content == bob.content
    assert "https://notify.example.org" in bob.content["line"]
