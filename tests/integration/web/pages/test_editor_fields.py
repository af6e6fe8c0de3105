"""The rule editor's markup over HTTP: a labelled field for every kind's list and every
filter, the look-up each completing field uses, and its script served as a file."""

from __future__ import annotations

import re

import pytest

from notifier.rules.model import TRACK_KINDS
from notifier.web.pages.editor import TARGETS
from tests.integration.web.pages.conftest import PagesSite, sign_in

pytestmark = pytest.mark.integration

FILTERS = {"applications": "applications", "excluded_applications": "applications",
           "topic": None}


def test_the_script_is_a_file_of_the_site(pages_site: PagesSite) -> None:
    with pages_site.client() as client:  # no sign-in: it is the same for everyone
        script = client.get("/static/web/editor.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "/rule-preview" in script.text and "AbortController" in script.text


def test_every_kind_and_every_filter_has_a_labelled_field(pages_site: PagesSite) -> None:
    client, _ = sign_in(pages_site, "alice")
    with client:
        page = client.get("/rules/new").text
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == ['<script src="/static/web/live.js" data-base="" defer>',  # every page's
                       '<script src="/static/web/editor.js" defer>']  # no inline script
    assert 'id="rule-editor" data-api="/api/v1"' in page
    for kind in TRACK_KINDS:
        assert f'<input type="radio" id="kind-{kind}" name="kind" value="{kind}"' in page
        assert f'<label for="kind-{kind}">' in page
    assert '<p class="hint" data-kind="related-events">' in page
    for kind, target in TARGETS.items():
        field = target["field"]
        assert f'<label for="{field}">{target["label"]}</label>' in page
        tag = re.search(rf'<(input|textarea) id="{field}" name="{field}"[^>]*>', page)
        assert tag, field
        wrapper = page.rfind("<div", 0, tag.start())
        assert page[wrapper:tag.start()].startswith(
            f'<div class="field" data-kind="{kind}" data-track=')
        lookup = re.search(r'data-lookup="([a-z]+)"', tag.group(0))
        assert (lookup.group(1) if lookup else None) == target["lookup"], field
    for field, lookup in FILTERS.items():
        tag = re.search(rf'<input id="{field}" name="{field}"[^>]*>', page)
        assert tag and f'<label for="{field}">' in page, field
        found = re.search(r'data-lookup="([a-z]+)"', tag.group(0))
        assert (found.group(1) if found else None) == lookup, field
    for severity in ("debug", "info", "warning", "error"):
        assert f'name="severities" value="{severity}"' in page
    assert 'id="my_actions" name="my_actions"' in page


def test_an_edited_rule_fills_its_kinds_field_only(pages_site: PagesSite) -> None:
    pages_site.store.upsert_rules([{
        "user": "alice", "name": "people", "destinations": ["email"],
        "track": {"kind": "users-followed", "users": ["bob", "carol"]},
        "filters": {"applications": ["bodhi", "koji"]}}])
    client, _ = sign_in(pages_site, "alice")
    with client:
        page = client.get("/rules/edit", params={"rule": "people"}).text
    values = dict(re.findall(r'<input id="([a-z_]+)" name="[a-z_]+" type="text" '
                             r'value="([^"]*)"', page))
    assert values == {"name": "people", "owners": "", "groups": "", "packages": "",
                      "people": "bob, carol", "applications": "bodhi, koji",
                      "excluded_applications": "",
                      "topic": ""}
    assert re.search(r'<textarea id="patterns"[^>]*></textarea>', page)
    assert 'id="kind-users-followed" name="kind" value="users-followed" checked' in page
