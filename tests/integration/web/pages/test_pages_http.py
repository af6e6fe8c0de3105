"""The web app's pages over HTTP, with httpx against the real server.

Forms post and redirect (303); each needs the session's CSRF token in its
``csrf_token`` field; another user's things are 404; non-admins get 403 on
the admin pages. What a form did is read back from the store.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from notifier.rules.model import TRACK_FIELDS, TRACK_KINDS
from notifier.storage.inbox import Inbox
from notifier.storage.mutes import Mutes
from notifier.web.api.auth import COOKIE
from notifier.web.pages.editor import TARGET_FIELDS
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.web.pages.conftest import PagesSite, sign_in, start_pages_site, topic_rule

pytestmark = pytest.mark.integration

PAGES = ("/inbox", "/rules", "/rules/new", "/tokens", "/admin")


def location(answer: httpx.Response, pages: PagesSite) -> str:
    assert answer.status_code == 303, (answer.status_code, answer.text[:2000])
    return answer.headers["location"].removeprefix(pages.base)


def inbox_ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="item [^"]*" id="n(\d+)"', text)]


def errors_of(text: str, field: str) -> str:
    found = re.search(rf'<ul class="errors" id="{field}-errors">(.*?)</ul>', text, re.S)
    return found.group(1) if found else ""


def test_pages_send_strangers_to_sign_in(pages_site: PagesSite) -> None:
    with pages_site.client() as client:
        for path in (*PAGES, "/"):
            answer = client.get(path)
            expected = "/signin" if path != "/" else None
            if expected is None:
                assert answer.status_code == 200 and "Sign in" in answer.text
            else:
                assert location(answer, pages_site) == expected, path
        page = client.get("/signin")
        assert page.status_code == 200
        assert '<label for="address">Your email address</label>' in page.text
        assert "/signin/oidc" not in page.text  # no [web] oidc_issuer here
        assert location(client.post("/inbox/read", data={"id": "1"}), pages_site) == "/signin"
        assert client.get("/static/web/style.css").headers["content-type"].startswith("text/css")
        for name in ("live.js", "editor.js", "push.js", "timezone.js"):
            served = client.get(f"/static/web/{name}")
            assert served.status_code == 200, name
            assert served.headers["content-type"].startswith("text/javascript"), name
        # Only the pages' own scripts: no other file of the package, whatever the name.
        for name in ("sw.js", "../style.css", "base.html", "..%2Fbase.html"):
            assert client.get(f"/static/web/{name}").status_code == 404, name
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_a_sign_in_link_by_email_then_sign_out(pages_site: PagesSite) -> None:
    with pages_site.client() as client:
        refused = client.post("/signin/email", data={"address": "not an address"})
        assert refused.status_code == 422
        assert "Enter an email address" in errors_of(refused.text, "address")
        asked = client.post("/signin/email", data={"address": "alice@example.org"})
        assert location(asked, pages_site) == "/signin"
        assert "a sign-in link is on its way" in client.get("/signin").text
        mails = pages_site.smtp.received(10)
        assert [m.address for m in mails] == ["alice@example.org"]
        link = re.search(r"http://\S+/signin/link/\S+", mails[0].text)
        assert link, mails[0].text
        assert "Sign in to notifier as <b>alice</b>" in client.get(link.group(0)).text
        assert location(client.post(link.group(0)), pages_site) == "/"
        start = client.get("/")
        assert start.status_code == 200 and "Signed in as <strong>alice</strong>" in start.text
        assert location(client.get("/signin"), pages_site) == "/"
        inbox = client.get("/inbox")
        assert inbox.status_code == 200 and "alice" in inbox.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', inbox.text)
        assert csrf
        assert location(client.post("/signout", data={"csrf_token": csrf.group(1)}),
                        pages_site) == "/signin"
        assert COOKIE not in client.cookies
    with pages_site.client() as stale:  # the old cookie is refused on the server
        stale.cookies.set(COOKIE, dict(client.cookies).get(COOKIE, "x"))
        assert location(stale.get("/inbox"), pages_site) == "/signin"


def test_a_sign_in_leads_to_the_page_asked_for(pages_site: PagesSite) -> None:
    with pages_site.client() as client:
        assert location(client.get("/rules/edit?rule=a b"), pages_site) == "/signin"
        assert location(client.post(pages_site.link("alice")), pages_site) \
            == "/rules/edit?rule=a%20b"
        # Once: the next sign-in lands on the start page again.
        assert location(client.post(pages_site.link("alice")), pages_site) == "/"
    with pages_site.client() as client:
        for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            client.cookies.set("notifier_next", elsewhere)
            assert location(client.post(pages_site.link("alice")), pages_site) == "/"
    with pages_site.client() as client:
        # A form posted while signed out is not repeated after the sign-in.
        assert location(client.post("/inbox/read", data={"id": "1"}), pages_site) == "/signin"
        assert "notifier_next" not in client.cookies


def test_forms_need_the_sessions_csrf_token(pages_site: PagesSite) -> None:
    rule = {"name": "new", "kind": "topics", "patterns": "*.build", "destinations": "email",
            "severities": "info", "enabled": "on"}
    alice, alice_csrf = sign_in(pages_site, "alice")
    bob, bob_csrf = sign_in(pages_site, "bob")
    with alice, bob:
        for token in (None, "", "wrong", bob_csrf):
            data = rule if token is None else {**rule, "csrf_token": token}
            answer = alice.post("/rules/new", data=data)
            assert answer.status_code == 403, token
            assert "security token" in answer.text
        as_json = alice.post("/rules/new", json={**rule, "csrf_token": alice_csrf})
        assert as_json.status_code == 415
        assert pages_site.store.list_rules("alice") == []
        # The API's rule is unchanged: the header, not a form field.
        api = alice.post("/api/v1/rules", json=topic_rule("alice", "api", "*.x"))
        assert api.status_code == 403
        api = alice.post("/api/v1/rules", json=topic_rule("alice", "api", "*.x"),
                         headers={"X-CSRF-Token": alice_csrf})
        assert api.status_code == 201, api.text
        done = alice.post("/rules/new", data={**rule, "csrf_token": alice_csrf})
        assert location(done, pages_site) == "/rules"
        assert [r["name"] for r in pages_site.store.list_rules("alice")] == ["api", "new"]


@pytest.mark.parametrize("kind", TRACK_KINDS)
def test_the_editor_makes_every_kind_of_rule(pages_site: PagesSite, kind: str) -> None:
    client, csrf = sign_in(pages_site, "alice")
    field = TRACK_FIELDS[kind]
    targets = "" if field is None else "one\ntwo, three"
    others = {t: "not-read" for t in TARGET_FIELDS.values()}  # the other kinds' lists
    form = {"csrf_token": csrf, "name": f"rule {kind}", "kind": kind, **others,
            **({TARGET_FIELDS[kind]: targets} if field else {}),
            "applications": "Koji, bodhi", "excluded_applications": "copr",
            "severities": ["warning", "error"], "my_actions": "on",
            "topic": "org.example.*", "destinations": ["email", "rss"], "enabled": "on"}
    with client:
        assert location(client.post("/rules/new", data=form), pages_site) == "/rules"
        listed = client.get("/rules")
        assert f"Rule &#39;rule {kind}&#39; is saved." in listed.text
        assert f"rule {kind}" in listed.text
    stored = pages_site.store.get_rule("alice", f"rule {kind}")
    assert stored is not None
    track = {"kind": kind} | ({field: ["one", "three", "two"]} if field else {})
    assert stored["track"] == track
    assert stored["filters"] == {"applications": ["bodhi", "koji"],
                                 "excluded_applications": ["copr"],
                                 "severities": ["warning", "error"], "my_actions": True,
                                 "topic": "org.example.*"}
    assert stored["destinations"] == ["email", "rss"] and stored["disabled"] is False


def test_the_editor_shows_each_problem_next_to_its_field(pages_site: PagesSite) -> None:
    pages_site.store.upsert_rules([topic_rule("alice", "builds", "*.build")])
    client, csrf = sign_in(pages_site, "alice")
    with client:
        bad = client.post("/rules/new", data={
            "csrf_token": csrf, "name": "", "kind": "users-followed", "people": "",
            "packages": "kept, as typed", "topic": "", "enabled": "on"})
        assert bad.status_code == 422
        assert "must not be empty" in errors_of(bad.text, "name")
        assert "needs a list of users" in errors_of(bad.text, "people")
        assert "at least one value" in errors_of(bad.text, "severities")
        assert "at least one value" in errors_of(bad.text, "destinations")
        assert 'id="people" name="people" type="text" value="" autocomplete="off" ' \
               'spellcheck="false" data-lookup="users" aria-describedby="people-hint ' \
               'people-errors" aria-invalid="true"' in bad.text
        assert 'name="packages" type="text" value="kept, as typed"' in bad.text
        taken = client.post("/rules/new", data={
            "csrf_token": csrf, "name": "builds", "kind": "topics", "patterns": "*.x",
            "severities": "info", "destinations": "email"})
        assert taken.status_code == 409 and "already have a rule" in errors_of(taken.text, "name")
        assert pages_site.store.get_rule("alice", "builds")["track"]["patterns"] == ["*.build"]

        edit = client.get("/rules/edit", params={"rule": "builds"})
        assert edit.status_code == 200 and "*.build</textarea>" in edit.text
        saved = client.post("/rules/edit", data={
            "csrf_token": csrf, "rule": "builds", "kind": "topics", "patterns": "*.build\n*.tag",
            "severities": ["error"], "destinations": "email"})
        assert location(saved, pages_site) == "/rules"
    rule = pages_site.store.get_rule("alice", "builds")
    assert rule["track"]["patterns"] == ["*.build", "*.tag"]
    assert rule["filters"]["severities"] == ["error"] and rule["disabled"] is True


def test_rules_list_switch_and_delete_only_the_callers_own(pages_site: PagesSite) -> None:
    pages_site.store.upsert_rules([topic_rule("alice", "builds", "*.build"),
                                   topic_rule("bob", "bobs", "*.x")])
    pages_site.notify("alice", 3, "builds")
    alice, csrf = sign_in(pages_site, "alice")
    bob, bob_csrf = sign_in(pages_site, "bob")
    with alice, bob:
        listed = alice.get("/rules")
        row = re.search(r"<tr>\s*<th scope=\"row\"><a [^>]*>builds</a>.*?</tr>", listed.text,
                        re.S)
        assert row and '<span class="num">3</span>' in row.group(0)
        assert "bobs" not in listed.text
        assert location(alice.post("/rules/switch", data={
            "csrf_token": csrf, "rule": "builds", "action": "disable"}), pages_site) == "/rules"
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is True
        assert "disabled" in alice.get("/rules").text
        alice.post("/rules/switch", data={"csrf_token": csrf, "rule": "builds",
                                          "action": "enable"})
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is False
        for path, data in (("/rules/switch", {"rule": "builds", "action": "disable"}),
                           ("/rules/delete", {"rule": "builds"})):
            assert bob.post(path, data={**data, "csrf_token": bob_csrf}).status_code == 404
        assert bob.get("/rules/edit", params={"rule": "builds"}).status_code == 404
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is False
        assert location(alice.post("/rules/delete", data={"csrf_token": csrf,
                                                          "rule": "builds"}),
                        pages_site) == "/rules"
        assert pages_site.store.get_rule("alice", "builds") is None


def test_the_inbox_pages_marks_explains_and_mutes(pages_site: PagesSite) -> None:
    pages_site.store.upsert_rules([topic_rule("alice", "builds", "*.build"),
                                   topic_rule("bob", "builds", "*.build")])
    pages_site.notify("alice", 30, "builds")
    pages_site.notify("bob", 1, "builds")
    inbox = Inbox(pages_site.store)
    alice, csrf = sign_in(pages_site, "alice")
    bob, _ = sign_in(pages_site, "bob")
    with alice, bob:
        first = alice.get("/inbox")
        ids = inbox_ids(first.text)
        assert len(ids) == 25 and ids == sorted(ids, reverse=True)
        assert '<span data-unread-count>30</span> unread of 30' in first.text
        assert "Build 29 of builds" in first.text  # the newest first
        older = re.search(r'rel="next" href="([^"]+)"', first.text)
        assert older
        rest = inbox_ids(alice.get(older.group(1).replace("&amp;", "&")).text)
        assert alice.get("/inbox", params={"cursor": "nonsense"}).status_code == 400
        assert len(rest) == 5 and max(rest) < min(ids)

        back = "/inbox?unread=1"
        marked = alice.post("/inbox/read", data={"csrf_token": csrf, "id": ids[0],
                                                 "back": back})
        assert location(marked, pages_site) == back
        assert inbox.counts("alice").unread == 29
        assert ids[0] not in inbox_ids(alice.get(back).text)
        alice.post("/inbox/read", data={"csrf_token": csrf, "id": ids[0], "read": "0"})
        assert inbox.counts("alice").unread == 30
        bobs = inbox.page("bob").items[0].id
        assert alice.post("/inbox/read", data={"csrf_token": csrf, "id": bobs}).status_code \
            == 404
        assert alice.get(f"/inbox/{bobs}/why").status_code == 404
        assert inbox.counts("bob").unread == 1
        assert location(alice.post("/inbox/read-all", data={
            "csrf_token": csrf, "up_to": max(ids)}), pages_site) == "/inbox"
        assert inbox.counts("alice").unread == 0

        why = alice.get(f"/inbox/{ids[0]}/why")
        assert why.status_code == 200
        assert "the topic matched pattern &#39;*.build&#39; (29)" in why.text
        assert "It is on." in why.text
        snoozed = alice.post("/inbox/mute", data={
            "csrf_token": csrf, "rule": "builds", "action": "snooze", "for": "8h",
            "back": f"/inbox/{ids[0]}/why"})
        assert location(snoozed, pages_site) == f"/inbox/{ids[0]}/why"
        state = Mutes(pages_site.store).find("alice", "builds")
        assert state and state.snoozed_until and state.snoozed_until > time.time() + 7 * 3600
        assert "It is snoozed until" in alice.get(f"/inbox/{ids[0]}/why").text
        alice.post("/inbox/mute", data={"csrf_token": csrf, "rule": "builds",
                                        "action": "mute"})
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is True
        assert pages_site.store.get_rule("bob", "builds")["disabled"] is False
        alice.post("/inbox/mute", data={"csrf_token": csrf, "rule": "builds",
                                        "action": "unmute"})
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is False
        gone = alice.post("/inbox/mute", data={"csrf_token": csrf, "rule": "nope",
                                               "action": "mute"})
        assert gone.status_code == 404
        outside = alice.post("/inbox/read-all", data={"csrf_token": csrf, "up_to": 0,
                                                      "back": "//evil.example/"})
        assert location(outside, pages_site) == "/inbox"


def test_tokens_are_shown_once_listed_and_revoked(pages_site: PagesSite) -> None:
    alice, csrf = sign_in(pages_site, "alice")
    bob, bob_csrf = sign_in(pages_site, "bob")
    with alice, bob:
        made = alice.post("/tokens", data={"csrf_token": csrf, "name": "laptop",
                                           "scope": "read"})
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        secret = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', made.text)
        assert secret
        api = httpx.get(f"{pages_site.base}/api/v1/users/me",
                        headers={"Authorization": f"Bearer {secret.group(1)}"})
        assert api.status_code == 200 and api.json()["name"] == "alice"
        listed = alice.get("/tokens")
        assert "laptop" in listed.text and secret.group(1) not in listed.text
        again = alice.post("/tokens", data={"csrf_token": csrf, "name": "laptop"})
        assert again.status_code == 409 and "laptop" in errors_of(again.text, "name")
        empty = alice.post("/tokens", data={"csrf_token": csrf, "name": " "})
        assert empty.status_code == 422 and errors_of(empty.text, "name")
        token_id = re.search(r'name="id" value="(\d+)"', listed.text)
        assert token_id
        assert bob.post("/tokens/revoke", data={"csrf_token": bob_csrf,
                                                "id": token_id.group(1)}).status_code == 404
        assert location(alice.post("/tokens/revoke", data={"csrf_token": csrf,
                                                           "id": token_id.group(1)}),
                        pages_site) == "/tokens"
        api = httpx.get(f"{pages_site.base}/api/v1/users/me",
                        headers={"Authorization": f"Bearer {secret.group(1)}"})
        assert api.status_code == 401


def test_admin_pages_are_for_admins(pages_site: PagesSite) -> None:
    pages_site.store.upsert_rules([topic_rule("alice", "builds", "*.build")])
    rule_id = Mutes(pages_site.store).find("alice", "builds").id
    alice, csrf = sign_in(pages_site, "alice")
    carol, carol_csrf = sign_in(pages_site, "carol")
    with alice, carol:
        assert alice.get("/admin").status_code == 403
        assert 'href="/admin"' not in alice.get("/rules").text
        refused = alice.post("/admin/switch", data={"csrf_token": csrf, "id": rule_id,
                                                    "action": "disable"})
        assert refused.status_code == 403
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is False
        page = carol.get("/admin")
        assert page.status_code == 200 and "bob@example.org" in page.text
        assert "builds" in page.text and 'href="/admin"' in page.text
        assert location(carol.post("/admin/switch", data={
            "csrf_token": carol_csrf, "id": rule_id, "action": "disable", "user": "alice"}),
            pages_site) == "/admin?user=alice"
        assert pages_site.store.get_rule("alice", "builds")["disabled"] is True
        assert carol.post("/admin/switch", data={"csrf_token": carol_csrf, "id": 9999,
                                                 "action": "enable"}).status_code == 404
        pages_site.store.upsert_rules([topic_rule("bob", f"b{i:03d}", "*.x")
                                       for i in range(201)])
        first = carol.get("/admin")
        assert "Rules 1 to 200 of 202." in first.text and 'rel="next" href="/admin?page=2"' \
            in first.text and "b198" in first.text and "b199" not in first.text
        second = carol.get("/admin", params={"page": 2})
        assert "Rules 201 to 202 of 202." in second.text and "b199" in second.text
        assert location(carol.post("/admin/switch", data={
            "csrf_token": carol_csrf, "id": rule_id, "action": "enable", "page": "2"}),
            pages_site) == "/admin?page=2"


def test_the_sign_in_page_offers_what_the_site_has(tmp_path: Path, smtp: SmtpPeer) -> None:
    site, stop = start_pages_site(tmp_path, smtp, oidc_issuer="http://127.0.0.1:9/oidc",
                                  client_id="notifier", client_secret="s",
                                  email_signin=False)
    try:
        with site.client() as client:
            page = client.get("/signin")
            assert page.status_code == 200
            assert 'href="/signin/oidc"' in page.text and 'name="address"' not in page.text
            off = client.post("/signin/email", data={"address": "alice@example.org"})
            assert off.status_code == 404 and "Sign-in by email is off" in off.text
            assert "signs in through its identity provider" in off.text
        assert smtp.received(0.5) == []
    finally:
        stop()
