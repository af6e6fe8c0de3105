"""``POST /api/v1/rule-preview`` and the look-ups, over HTTP against the real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.meta import Describer
from notifier.rules import parse_rule
from notifier.rules.preview import scan
from notifier.storage import Store
from notifier.storage.credentials import Credentials
from tests.history_mix import OWNERS, history, preview_config, rules
from tests.integration.web.threaded import served

pytestmark = pytest.mark.integration

WEEK = 7 * 86400


class Api:
    def __init__(self, base: str, store: Store, describer: Describer, now: float):
        self.base, self.store, self.describer, self.now = base, store, describer, now

    def client(self, user: str = "alice", scope: str = "read") -> httpx.Client:
        secret, _ = Credentials(self.store).create_token(user, f"t{time.monotonic_ns()}", scope)
        return httpx.Client(base_url=f"{self.base}/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp("preview")
    config = preview_config(f"sqlite:///{tmp / 'n.db'}", str(tmp / "notifier.toml"),
                            http={"listen": "127.0.0.1:0"})
    store = Store.from_config(config)
    store.import_users([{"name": n} for n in ("alice", "bob", "kelly")])
    store.apply_ownership(OWNERS["packages"])
    now = time.time()
    describer = Describer(config)
    store.store_messages(history(600, now), describer.describe)
    try:
        with served(config, store) as url:
            yield Api(url, store, describer, now)
    finally:
        store.close()


def expected(api: Api, data: dict[str, Any], since: float, user: str = "alice") -> list[str]:
    rule = parse_rule({"name": "x", **data, "user": user}, source="test")
    return [row.msg_id for row, record in scan(api.store, api.describer, rule, since)
            if record is not None][::-1]


def test_the_preview_of_each_rule_is_what_the_matcher_would_have_sent(api: Api) -> None:
    with api.client() as client:
        totals = []
        for data in rules():
            data = {k: v for k, v in data.items() if k not in ("user", "name")}
            response = client.post("/rule-preview", json={"rule": data, "since": "7d",
                                                          "limit": 10})
            assert response.status_code == 200, response.text
            body = response.json()
            want = expected(api, data, body["since"])
            assert [m["msg_id"] for m in body["messages"]] == want[:10], data
            assert body["total"] == len(want) and body["total_exact"]
            totals.append(body["total"])
            for message in body["messages"]:
                assert set(message) == {"msg_id", "topic", "app", "summary", "link",
                                        "timestamp"}
                assert message["summary"].startswith("message ")
                assert message["link"].startswith("https://example.org/")
            stamps = [m["timestamp"] for m in body["messages"]]
            assert stamps == sorted(stamps, reverse=True)
            assert all(s >= body["since"] for s in stamps)
        assert max(totals) > 10 and 0 in totals


def test_the_rule_is_always_the_callers(api: Api) -> None:
    rule = {"track": {"kind": "related-events"}}
    with api.client("bob") as bob, api.client("alice") as alice:
        as_bob = bob.post("/rule-preview", json={"rule": {**rule, "user": "alice"}}).json()
        as_alice = alice.post("/rule-preview", json={"rule": rule}).json()
    assert as_bob["messages"] and as_bob["messages"] != as_alice["messages"]
    want = expected(api, {"name": "x", "destinations": ["rss"], "track": rule["track"]},
                    as_bob["since"], user="bob")
    assert [m["msg_id"] for m in as_bob["messages"]] == want[:50]


def test_bad_requests_name_the_field(api: Api) -> None:
    cases = [
        ({"rule": {"track": {"kind": "artefacts-owned"}}}, "rule.track.kind"),
        ({"rule": {"track": {"kind": "topics"}, "filters": {"severities": ["loud"]}}},
         "rule.filters.severities[0]"),
        ({"rule": {"track": {"kind": "related-events"}}, "since": "soon"}, "since"),
        ({"rule": {"track": {"kind": "related-events"}}, "limit": 0}, "limit"),
        ({"rule": {"track": {"kind": "related-events"}}, "extra": 1}, "extra"),
        ({"rule": "x"}, "rule"),
    ]
    with api.client() as client:
        for body, field in cases:
            response = client.post("/rule-preview", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            fields = [e["field"] for e in response.json()["errors"]]
            assert any(f.startswith(field) for f in fields), (body, fields)
    with httpx.Client(base_url=f"{api.base}/api/v1") as anonymous:
        refused = anonymous.post("/rule-preview", json={"rule": {"track": {
            "kind": "related-events"}}})
        assert refused.status_code == 401
        assert anonymous.get("/lookups/applications").status_code == 401


def test_lookups(api: Api) -> None:
    with api.client() as client:
        assert client.get("/lookups/applications").json() == [
            "bodhi", "copr", "distgit", "koji", "pagure"]
        assert client.get("/lookups/packages", params={"prefix": "ker"}).json() == [
            "kernel", "kernel-headers"]
        assert client.get("/lookups/packages", params={"prefix": "ker", "limit": 1}).json() == [
            "kernel"]
        assert client.get("/lookups/packages", params={"prefix": "ñ"}).json() == ["ñandú"]
        assert client.get("/lookups/users", params={"prefix": "k"}).json() == ["kelly"]
        assert client.get("/lookups/users", params={"prefix": "李"}).json() == ["李雷"]
        assert client.get("/lookups/groups", params={"prefix": ""}).json() == [
            "infra", "python-sig", "Ω-team"]
        assert client.get("/lookups/groups", params={"prefix": "zz"}).json() == []
        bad = client.get("/lookups/users", params={"limit": 1000})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "limit"
