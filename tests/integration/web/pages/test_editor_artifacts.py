"""The rule editor with containers, modules and flatpaks: typed as KIND/NAME in the list of
followed artifacts, stored by key, a mistyped kind shown next to that field."""

from __future__ import annotations

import html
import re

import pytest

from tests.integration.web.pages.conftest import PagesSite, sign_in

pytestmark = pytest.mark.integration


def test_followed_artifacts_of_every_kind_from_the_form(pages_site: PagesSite) -> None:
    client, csrf = sign_in(pages_site, "alice")
    form = {"csrf_token": csrf, "name": "desktop", "kind": "artifacts-followed",
            "packages": "firefox, container/fedora-toolbox\nmodules/nodejs, flatpak/org.gnome.Maps",
            "severities": ["info", "warning", "error"], "destinations": ["email"],
            "enabled": "on"}
    with client:
        saved = client.post("/rules/new", data=form)
        assert saved.status_code == 303, saved.text
        [rule] = pages_site.store.list_rules("alice")
        assert rule["track"] == {"kind": "artifacts-followed", "packages": [
            "containers/fedora-toolbox", "firefox", "flatpaks/org.gnome.Maps",
            "modules/nodejs"]}
        listed = html.unescape(client.get("/rules").text)
        assert ("These packages: containers/fedora-toolbox, firefox, flatpaks/org.gnome.Maps, "
                "modules/nodejs") in listed
        edited = client.get("/rules/edit", params={"rule": "desktop"}).text
        assert ('value="containers/fedora-toolbox, firefox, flatpaks/org.gnome.Maps, '
                'modules/nodejs"') in edited

        bad = client.post("/rules/new", data={**form, "name": "typo",
                                               "packages": "kernel, contaners/x"})
        assert bad.status_code == 422
        shown = html.unescape(re.search(r'id="packages-errors">(.*?)</ul>', bad.text,
                                        re.S).group(1))
        assert "unknown artifact kind 'contaners' (did you mean 'containers'?)" in shown
        assert 'value="kernel, contaners/x"' in bad.text  # the form keeps what was typed
        assert [r["name"] for r in pages_site.store.list_rules("alice")] == ["desktop"]
