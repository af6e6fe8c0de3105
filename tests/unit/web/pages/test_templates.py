"""The web app's templates: all load from the installed package, and HTML is escaped."""

from __future__ import annotations

from importlib.resources import files

import jinja2
import pytest

from notifier.web.pages.base import environment, stylesheet, when

NAMES = sorted(p.name for p in files("notifier.templates").joinpath("web").iterdir()
               if p.name.endswith(".html"))


def test_the_pages_templates_are_installed() -> None:
    assert {"base.html", "inbox.html", "rule_edit.html", "rules.html", "signin.html",
            "tokens.html", "admin.html", "why.html"} <= set(NAMES)
    assert b"prefers-color-scheme: dark" in stylesheet()


@pytest.mark.parametrize("name", NAMES)
def test_each_template_compiles(name: str) -> None:
    environment().get_template(name)


def test_unknown_templates_are_reported() -> None:
    with pytest.raises(jinja2.TemplateNotFound):
        environment().get_template("nope.html")


def test_text_is_escaped_and_only_web_links_are_links() -> None:
    template = environment().from_string(
        "{{ text }}|{% if link is web_link %}link{% else %}text{% endif %}")
    assert template.render(text="<b>&", link="https://x") == "&lt;b&gt;&amp;|link"
    for link in ("javascript:alert(1)", "data:text/html,x", None, "//x"):
        assert template.render(text="", link=link) == "|text"


def test_times_read_in_utc() -> None:
    assert when(0) == "1970-01-01 00:00 UTC" and when(None) == "never"
