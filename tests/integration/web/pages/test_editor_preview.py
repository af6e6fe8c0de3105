"""The rule editor's preview over HTTP: the stored messages a rule would have sent, as the
API's preview finds them, shown under the form; nothing is saved; problems by field."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from notifier.meta import Describer
from tests.history_mix import OWNERS, history
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.web.pages.conftest import PagesSite, sign_in, start_pages_site

pytestmark = pytest.mark.integration


def test_the_preview_shows_what_the_api_previews(tmp_path: Path, smtp: SmtpPeer) -> None:
    settings = {"meta": {  # as tests.history_mix.preview_config describes the mix
        "use_fedmsg_meta": False, "use_fedora_messaging": False,
        "mappings": [{"topic": "org.example.*", "agent_path": "agent",
                      "usernames_paths": ["agent", "users"], "packages_paths": ["packages"],
                      "groups_paths": ["groups"], "summary_path": "text",
                      "link_path": "url"}]}}
    site, stop = start_pages_site(tmp_path, smtp, settings)
    try:
        site.store.apply_ownership(OWNERS["packages"])
        describer = Describer(site.web.api.config)
        site.store.store_messages(history(300, time.time()), describer.describe)
        pages = PagesSite(site, smtp)
        client, csrf = sign_in(pages, "alice")
        form = {"csrf_token": csrf, "name": "mine", "kind": "artifacts-owned", "owners": "",
                "severities": ["debug", "info", "warning", "error"], "since": "7d"}
        with client:
            shown = client.post("/rules/preview", data=form)
            assert shown.status_code == 200, shown.text
            api = client.post("/api/v1/rule-preview", headers={"X-CSRF-Token": csrf}, json={
                "rule": {"track": {"kind": "artifacts-owned"}, "filters": {
                    "severities": ["debug", "info", "warning", "error"]}},
                "since": "7d", "limit": 20}).json()
            assert api["total"] > 0
            listed = re.search(r'<ol class="preview-list">(.*?)</ol>', shown.text, re.S)
            assert listed
            summaries = [html.unescape(s) for s in
                         re.findall(r'rel="noopener noreferrer">([^<]*)</a>', listed.group(1))]
            assert summaries == [m["summary"] for m in api["messages"]]
            assert f"{api['total']} message" in shown.text
            assert 'id="name" name="name" type="text" required maxlength="200" value="mine"' \
                in shown.text  # the form keeps what was typed
            assert site.store.list_rules("alice") == []

            bad = client.post("/rules/preview", data={**form, "kind": "users-followed"})
            assert bad.status_code == 422
            assert "needs a list of users" in re.search(
                r'id="people-errors">(.*?)</ul>', bad.text, re.S).group(1)
            refused = client.post("/rules/preview", data={**form, "csrf_token": "x"})
            assert refused.status_code == 403
    finally:
        stop()
