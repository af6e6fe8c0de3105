"""Rules on containers, modules and flatpaks through the web API, over HTTP against the real
server: validated with did-you-mean errors, stored by key, previewed, and looked up."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.config import config_from_dict
from notifier.meta import Describer
from notifier.rules import parse_rule
from notifier.rules.preview import scan
from notifier.storage import Store
from notifier.storage.credentials import Credentials
from tests.integration.web.threaded import served

pytestmark = pytest.mark.integration

KINDS = ["packages", "containers", "modules", "flatpaks"]
NAMES = ["firefox", "fedora-toolbox", "nodejs"]
OWNERS = {"firefox": {"users": ["alice"]}, "containers/fedora-toolbox": {"users": ["alice"]},
          "modules/nodejs": {"groups": ["js-sig"]}, "flatpaks/firefox": {"users": ["bob"]}}


class Api:
    def __init__(self, base: str, store: Store, describer: Describer):
        self.base, self.store, self.describer = base, store, describer

    def client(self, user: str = "alice", scope: str = "write") -> httpx.Client:
        secret, _ = Credentials(self.store).create_token(user, f"t{time.monotonic_ns()}", scope)
        return httpx.Client(base_url=f"{self.base}/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {secret}"})


def pushes(count: int, now: float) -> list[dict[str, Any]]:
    rnd = random.Random(5)
    out = []
    for i in range(count):
        body: dict[str, Any] = {"text": f"push {i}", "agent": rnd.choice(["carol", "dave"])}
        for kind in KINDS:
            body[kind] = rnd.sample(NAMES, rnd.choice([0, 0, 1]))
        out.append({"topic": "org.example.prod.git.receive", "msg_id": f"p{i}",
                    "timestamp": now - rnd.uniform(0, 5 * 86400), "msg": body})
    return out


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp("artifacts")
    config = config_from_dict({
        "database_url": f"sqlite:///{tmp / 'n.db'}", "http": {"listen": "127.0.0.1:0"},
        "meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False, "mappings": [{
            "topic": "org.example.*", "agent_path": "agent", "summary_path": "text",
            **{f"{kind}_paths": [kind] for kind in KINDS}}]}}, str(tmp / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": n} for n in ("alice", "bob")])
    store.apply_ownership(OWNERS)
    describer = Describer(config)
    store.store_messages(pushes(300, time.time()), describer.describe)
    try:
        with served(config, store) as url:
            yield Api(url, store, describer)
    finally:
        store.close()


def test_a_rule_names_artifacts_as_people_write_them_and_is_stored_by_key(api: Api) -> None:
    rule = {"name": "Toolbox and maps", "destinations": ["rss"],
            "track": {"kind": "artifacts-followed",
                      "packages": ["container/fedora-toolbox", "flatpak/org.gnome.Maps",
                                   "rpms/firefox"]}}
    with api.client() as client:
        created = client.post("/rules", json=rule)
        assert created.status_code == 201, created.text
        assert created.json()["track"]["packages"] == [
            "containers/fedora-toolbox", "firefox", "flatpaks/org.gnome.Maps"]
        read = client.get("/rules/Toolbox and maps").json()
        assert read["track"] == created.json()["track"]


def test_an_unknown_kind_is_refused_under_its_field(api: Api) -> None:
    rule = {"name": "typo", "destinations": ["rss"],
            "track": {"kind": "artifacts-followed", "packages": ["kernel", "contaners/x"]}}
    with api.client() as client:
        for path, body, prefix in (("/rules", rule, ""),
                                   ("/rule-preview", {"rule": rule}, "rule.")):
            refused = client.post(path, json=body)
            assert refused.status_code == 422, refused.text
            [error] = refused.json()["errors"]
            assert error["field"] == f"{prefix}track.packages[1]"
            assert "unknown artifact kind 'contaners' (did you mean 'containers'?)" \
                in error["detail"]


@pytest.mark.parametrize("track", [
    {"kind": "artifacts-owned"},
    {"kind": "artifacts-owned", "users": ["bob"]},
    {"kind": "artifacts-group-owned", "groups": ["js-sig"]},
    {"kind": "artifacts-followed", "packages": ["container/fedora-toolbox"]},
    {"kind": "artifacts-followed", "packages": ["flatpaks/firefox", "modules/nodejs"]},
])
def test_the_preview_of_each_kind_is_what_the_matcher_would_have_sent(api: Api,
                                                                      track: dict) -> None:
    with api.client() as client:
        response = client.post("/rule-preview", json={"rule": {"track": track}, "since": "7d",
                                                      "limit": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    rule = parse_rule({"user": "alice", "name": "x", "destinations": ["rss"], "track": track},
                      source="test")
    want = [row.msg_id for row, record in scan(api.store, api.describer, rule, body["since"])
            if record is not None][::-1]
    assert want
    assert [m["msg_id"] for m in body["messages"]] == want
    assert body["total"] == len(want) and body["total_exact"]


def test_the_look_up_finds_every_kind_by_key(api: Api) -> None:
    with api.client(scope="read") as client:
        def names(prefix: str) -> list[str]:
            return client.get("/lookups/packages", params={"prefix": prefix}).json()

        assert names("containers/") == [f"containers/{n}" for n in sorted(NAMES)]
        assert names("modules/n") == ["modules/nodejs"]
        assert names("fi") == ["firefox"]  # the package; the flatpak is flatpaks/firefox
        assert names("flatpaks/fi") == ["flatpaks/firefox"]
