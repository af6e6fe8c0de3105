"""Errors are application/problem+json (RFC 9457) and name the field path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.web.conftest import Site

from .conftest import API, Browser, bearer, make_token

pytestmark = pytest.mark.integration

GOOD = {"name": "mine", "track": {"kind": "topics", "patterns": ["org.example.*"]},
        "destinations": ["rss"]}


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


@pytest.fixture
def writer(api_site: Site) -> httpx.Client:
    client = api_site.client(headers=bearer(make_token(api_site, "alice", "write")))
    return client


def test_a_rule_error_names_its_field_path(writer: httpx.Client) -> None:
    body = problem(writer.post(f"{API}/rules", json={**GOOD, "track": {
        "kind": "artefacts-owned"}}), 422)
    assert fields(body) == ["track.kind"]
    assert "track.kind" in body["detail"] and "artefacts-owned" in body["errors"][0]["detail"]
    body = problem(writer.post(f"{API}/rules", json={
        **GOOD, "filters": {"severities": ["warning", "loud"]}}), 422)
    assert fields(body) == ["filters.severities[1]"]
    body = problem(writer.post(f"{API}/rules", json={**GOOD, "destinations": ["pigeon"]}),
                   422)
    assert fields(body)[0].startswith("destinations")
    body = problem(writer.post(f"{API}/rules", json=["not", "an", "object"]), 422)
    assert fields(body) == ["body"]
    body = problem(writer.post(f"{API}/rules", content=b"{not json",
                               headers={"content-type": "application/json"}), 422)
    assert fields(body) == ["body"] and "not JSON" in body["detail"]
    assert writer.post(f"{API}/rules", json=GOOD).status_code == 201  # positive control


def test_a_schema_error_names_its_field(api_site: Site,
                                        browsers: Callable[[str], Browser]) -> None:
    alice = browsers("alice")
    body = problem(alice.send("POST", f"{API}/tokens", json={"name": "", "scope": "read"}),
                   422)
    assert fields(body) == ["name"]
    body = problem(alice.send("POST", f"{API}/tokens", json={"scope": "read"}), 422)
    assert fields(body) == ["name"]
    body = problem(alice.send("DELETE", f"{API}/tokens/not-a-number"), 422)
    assert fields(body) == ["token_id"]


def test_http_errors_under_the_api_are_problems(api_site: Site, writer: httpx.Client) -> None:
    problem(writer.get(f"{API}/no-such-thing"), 404)
    problem(writer.patch(f"{API}/rules"), 405)
    problem(writer.get(f"{API}/rules/nothing"), 404)
    with api_site.client() as anonymous:
        body = problem(anonymous.get(f"{API}/rules"), 401)
        assert body["detail"] and anonymous.get(f"{API}/rules").headers[
            "WWW-Authenticate"] == "Bearer"
        # outside the API, the service's own pages
        page = anonymous.get("/no-such-page")
        assert page.status_code == 404 and "problem" not in page.headers["content-type"]
