"""Rules over the API: list, create, read, replace, delete; and a change made through the
API reaching a running ``notifier serve`` through the store's change log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from notifier.web.api.auth import CSRF_HEADER
from tests.conftest import free_port, run, wait_for
from tests.integration.serveproc import ServeProcess, write_toml
from tests.integration.web.conftest import Site

from .conftest import API, Browser

pytestmark = pytest.mark.integration

GIT = "*.git.*"


def rule(name: str, pattern: str = GIT, **kw: Any) -> dict[str, Any]:
    return {"name": name, "track": {"kind": "topics", "patterns": [pattern]},
            "destinations": ["rss"], **kw}


def test_rules_crud(api_site: Site, browsers: Callable[[str], Browser]) -> None:
    alice, bob = browsers("alice"), browsers("bob")
    assert alice.client.get(f"{API}/rules").json() == []
    made = alice.send("POST", f"{API}/rules", json={**rule("git"), "user": "bob"})
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"{API}/rules/git"
    body = made.json()
    assert body["name"] == "git" and body["user"] == "alice" and body["sent_7d"] == 0
    assert body["track"] == {"kind": "topics", "patterns": [GIT]}
    assert api_site.store.get_rule("alice", "git") is not None
    assert api_site.store.list_rules("bob") == []  # the body's user is ignored
    assert alice.send("POST", f"{API}/rules", json=rule("git")).status_code == 409
    assert alice.send("POST", f"{API}/rules", json=rule("a b/c")).status_code == 201
    listed = alice.client.get(f"{API}/rules").json()
    assert sorted(r["name"] for r in listed) == ["a b/c", "git"]
    assert all(r["sent_7d"] == 0 for r in listed)
    assert alice.client.get(f"{API}/rules/git").json()["name"] == "git"
    replaced = alice.send("PUT", f"{API}/rules/git", json=rule("git", "*.other.*"))
    assert replaced.status_code == 200
    assert api_site.store.get_rule("alice", "git")["track"]["patterns"] == ["*.other.*"]
    renamed = alice.send("PUT", f"{API}/rules/git", json=rule("new name"))
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "name"
    nameless = rule("x")
    del nameless["name"]
    assert alice.send("PUT", f"{API}/rules/git", json=nameless).status_code == 200
    assert bob.client.get(f"{API}/rules").json() == []
    assert bob.client.get(f"{API}/rules/git").status_code == 404
    assert bob.send("DELETE", f"{API}/rules/git").status_code == 404
    assert alice.send("DELETE", f"{API}/rules/git").status_code == 204
    assert alice.client.get(f"{API}/rules/git").status_code == 404
    assert alice.send("DELETE", f"{API}/rules/git").status_code == 404
    assert [r["name"] for r in api_site.store.list_rules("alice")] == ["a b/c"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[ServeProcess, Path]]:
    http = f"127.0.0.1:{free_port()}"
    config = write_toml(tmp_path / "notifier.toml", {
        "database_url": f"sqlite:///{tmp_path / 'notifier.db'}",
        "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": http, "base_url": f"http://{http}"},
        "delivery": {"retry_base": 0.2, "retry_max": 1.0},
        "email": {"maildir": str(tmp_path / "Mail")}})
    users = [{"name": name, "emails": [f"{name}@example.org"], "ircnicks": [], "groups": []}
             for name in ("alice", "bob")]
    (tmp_path / "users.json").write_text(json.dumps(users))
    cli(config, "users", "import", str(tmp_path / "users.json"))
    cli(config, "rules", "import", "-", input=json.dumps(
        [{"user": "bob", "name": "control", "track": {"kind": "topics", "patterns": [GIT]},
          "destinations": ["rss"]}]))
    process = ServeProcess(config, http, tmp_path / "serve.log")
    try:
        yield process.start(), config
    finally:
        process.ensure_stopped()


def cli(config: Path, *args: str, input: str | None = None) -> str:
    result = run("notifier", *args, "--config", str(config), input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def feed_titles(client: httpx.Client, user: str, token: str) -> list[str]:
    answer = client.get(f"/feeds/{user}.atom", params={"token": token})
    assert answer.status_code == 200
    return [entry.title for entry in feedparser.parse(answer.content).entries]


def test_a_rule_made_through_the_api_reaches_a_running_service(
        serve: tuple[ServeProcess, Path]) -> None:
    process, config = serve
    link = cli(config, "users", "login-link", "alice").strip()
    token = cli(config, "tokens", "create", "alice", "--name", "feed reader").strip()
    bobs = json.loads(cli(config, "users", "show", "bob", "--json"))["feed_token"]
    with httpx.Client(base_url=f"http://{process.http}", timeout=10) as browser:
        assert browser.post(link).status_code == 303
        csrf = browser.get(f"{API}/users/me").json()["csrf_token"]
        made = browser.post(f"{API}/rules", json=rule("from the api"),
                            headers={CSRF_HEADER: csrf})
        assert made.status_code == 201, made.text
        probes: list[str] = []

        def reaches_alice() -> bool:
            probes.append(f"probe {len(probes)}")
            assert run("notifier-logger", "--modname=git", "--topic=repo.update", "--config",
                       str(config), input=probes[-1] + "\n").returncode == 0
            wait_for(lambda: f"[git] {probes[-1]}" in feed_titles(browser, "bob", bobs),
                     f"{probes[-1]!r} in bob's feed", context=process.log)
            return f"[git] {probes[-1]}" in feed_titles(browser, "alice", token)

        wait_for(reaches_alice, "a message to reach alice's rule made through the API",
                 interval=0, context=process.log)
        wait_for(lambda: browser.get(f"{API}/rules/from the api").json()["sent_7d"] >= 1,
                 "the rule's count of the last 7 days")

        # deleted through the API: the next message reaches bob's rule, not alice's
        assert browser.delete(f"{API}/rules/from the api",
                              headers={CSRF_HEADER: csrf}).status_code == 204
        after: list[str] = []

        def gone() -> bool:
            after.append(f"after {len(after)}")
            assert run("notifier-logger", "--modname=git", "--topic=repo.update", "--config",
                       str(config), input=after[-1] + "\n").returncode == 0
            wait_for(lambda: f"[git] {after[-1]}" in feed_titles(browser, "bob", bobs),
                     f"{after[-1]!r} in bob's feed", context=process.log)
            return f"[git] {after[-1]}" not in feed_titles(browser, "alice", token)

        wait_for(gone, "the deleted rule to stop matching", interval=0, context=process.log)
    assert process.stop() == 0
    assert "Traceback" not in process.log()
