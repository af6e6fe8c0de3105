"""Quiet hours over HTTP against the real server: the settings page's form, with each
problem next to its field, and the API (``/delivery/quiet-hours`` and ``/delivery``)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from notifier.storage.destinations import Destinations
from tests.integration.web.pages.conftest import PagesSite, sign_in

pytestmark = pytest.mark.integration

PRAGUE = {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}


def errors_of(text: str, field: str) -> str:
    found = re.search(rf'<ul class="errors" id="{field}-errors">(.*?)</ul>', text, re.S)
    return html.unescape(found.group(1)) if found else ""


def input_tag(text: str, ident: str) -> str:
    found = re.search(rf'<input id="{ident}"[^>]*>', text)
    assert found, f"no input {ident}"
    return found.group(0)


def test_the_quiet_hours_form_saves_and_shows_problems_next_to_their_fields(
        pages_site: PagesSite) -> None:
    alice, csrf = sign_in(pages_site, "alice")
    store = Destinations(pages_site.store)
    with alice:
        page = alice.get("/settings")
        assert page.status_code == 200
        assert re.search(r'<a href="[^"]*/settings" aria-current="page">Settings</a>',
                         page.text)  # in the navigation
        for ident, label in (("quiet-start", "From"), ("quiet-end", "Until"),
                             ("quiet-timezone", "Time zone")):
            assert f'<label for="{ident}">{label}</label>' in page.text
        assert '<option value="Europe/Prague">' in page.text
        assert "You have no quiet hours" in page.text
        script = re.search(r'<script src="([^"]*/static/web/timezone\.js)" defer>', page.text)
        assert script, "the time zone script"
        served = alice.get(httpx.URL(pages_site.base).join(script.group(1)))
        assert served.status_code == 200 and "javascript" in served.headers["content-type"]
        assert "resolvedOptions().timeZone" in served.text

        bad = alice.post("/settings/quiet-hours", data={
            "csrf_token": csrf, "start": "22:00", "end": "07:00", "timezone": "Europe/Praha"})
        assert bad.status_code == 422
        assert "'Europe/Praha' is not a known time zone" in errors_of(bad.text, "quiet-timezone")
        assert errors_of(bad.text, "quiet-start") == errors_of(bad.text, "quiet-end") == ""
        zone = input_tag(bad.text, "quiet-timezone")
        assert 'aria-invalid="true"' in zone and 'value="Europe/Praha"' in zone
        assert "quiet-timezone-errors" in zone  # described by its error
        assert store.delivery("alice") is None  # nothing saved

        same = alice.post("/settings/quiet-hours", data={
            "csrf_token": csrf, "start": "07:00", "end": "07:00", "timezone": "UTC"})
        assert same.status_code == 422
        assert "must differ from 'start'" in errors_of(same.text, "quiet-end")
        empty = alice.post("/settings/quiet-hours", data={"csrf_token": csrf, "start": "25:00"})
        assert empty.status_code == 422
        assert "HH:MM" in errors_of(empty.text, "quiet-start")
        assert errors_of(empty.text, "quiet-end") and errors_of(empty.text, "quiet-timezone")

        saved = alice.post("/settings/quiet-hours", data={"csrf_token": csrf, **PRAGUE})
        assert saved.status_code == 303, saved.text
        assert store.delivery("alice") == {"quiet_hours": PRAGUE}
        shown = alice.get("/settings").text
        assert 'value="Europe/Prague"' in input_tag(shown, "quiet-timezone")
        assert 'value="22:00"' in input_tag(shown, "quiet-start")
        assert "Your quiet hours are saved." in shown
        assert "Quiet from 22:00 to 07:00" in shown or "It is quiet now" in shown
        # Quiet from an hour ago to two hours from now, in UTC: quiet now.
        now = datetime.now(UTC)
        around = {"start": (now - timedelta(hours=1)).strftime("%H:%M"),
                  "end": (now + timedelta(hours=2)).strftime("%H:%M"), "timezone": "UTC"}
        assert alice.post("/settings/quiet-hours",
                          data={"csrf_token": csrf, **around}).status_code == 303
        assert f"It is quiet now, until {around['end']} (UTC)." in alice.get("/settings").text
        assert alice.post("/settings/quiet-hours",
                          data={"csrf_token": csrf, **PRAGUE}).status_code == 303

        # The destinations form replaces the digests, and keeps the quiet hours.
        kept = alice.post("/destinations/delivery", data={
            "csrf_token": csrf, "email-digest": "digest", "email-every": "1h"})
        assert kept.status_code == 303, kept.text
        assert store.delivery("alice") == {"email": {"digest": {"every": "1h"}},
                                           "quiet_hours": PRAGUE}

        assert alice.post("/settings/quiet-hours", data={**PRAGUE}).status_code == 403
        off = alice.post("/settings/quiet-hours/off", data={"csrf_token": csrf})
        assert off.status_code == 303
        assert store.delivery("alice") == {"email": {"digest": {"every": "1h"}}}


def write_token(pages_site: PagesSite) -> str:
    bob, csrf = sign_in(pages_site, "bob")
    with bob:
        made = bob.post("/tokens", data={"csrf_token": csrf, "name": "api", "scope": "write"})
    found = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', made.text)
    assert found, made.text
    return found.group(1)


def test_the_api_sets_quiet_hours_and_names_the_field_at_fault(pages_site: PagesSite) -> None:
    headers = {"Authorization": f"Bearer {write_token(pages_site)}"}
    with httpx.Client(base_url=f"{pages_site.base}/api/v1", headers=headers,
                      timeout=10) as api:
        assert api.get("/delivery/quiet-hours").json() is None
        bad = api.put("/delivery/quiet-hours", json={"start": "22:00", "end": "7",
                                                     "timezone": "Nowhere/City", "x": 1})
        assert bad.status_code == 422
        fields = {e["field"] for e in bad.json()["errors"]}
        assert fields == {"end", "timezone", "body"}
        assert api.put("/delivery/quiet-hours", json=PRAGUE).json() == PRAGUE
        assert api.get("/delivery").json()["quiet_hours"] == PRAGUE

        # PUT /delivery: left out keeps them; a bad one is refused naming its field.
        assert api.put("/delivery", json={"webpush": {"digest": {"every": "15m"}}}
                       ).json()["quiet_hours"] == PRAGUE
        refused = api.put("/delivery", json={"quiet_hours": {**PRAGUE, "start": "22.00"}})
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["quiet_hours.start"]
        cleared = api.put("/delivery", json={"quiet_hours": None})
        assert cleared.json()["quiet_hours"] is None
        assert api.get("/delivery/quiet-hours").json() is None
        assert api.put("/delivery/quiet-hours").status_code == 422  # no body: say so
        assert api.put("/delivery/quiet-hours", json=PRAGUE).status_code == 200
        assert api.delete("/delivery/quiet-hours").status_code == 204
        assert api.get("/delivery/quiet-hours").json() is None
        assert api.delete("/delivery/quiet-hours").status_code == 204
