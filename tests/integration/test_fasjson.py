"""User profiles from FASJSON, with the real fasjson-client against a local server.

The server speaks just enough of FASJSON v1: the OpenAPI spec that ships in
fasjson-client's wheel, and ``GET /fasjson/v1/users/<name>/``.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.cli.main import cli
from notifier.config import Config, config_from_dict
from notifier.errors import ConfigError
from notifier.storage import Store
from notifier.users import DirectoryError, FasjsonSource, UserDirectory
from tests.conftest import run

pytestmark = [pytest.mark.integration,
              # fasjson-client's dependencies use a deprecated jsonschema API
              pytest.mark.filterwarnings("ignore:jsonschema.RefResolver:DeprecationWarning")]

# Found without importing fasjson_client, whose import is slow and noisy.
SPEC = Path(importlib.util.find_spec("fasjson_client").origin).parent \
    / "tests" / "unit" / "fixtures" / "spec.json"  # type: ignore[union-attr, arg-type]


class FakeFasjson:
    """A FASJSON v1 server on a free loopback port, in a thread."""

    def __init__(self) -> None:
        spec = json.loads(SPEC.read_text())
        spec.pop("host", None)
        self.spec = json.dumps(spec).encode()
        self.users: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.failing = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                status, body = server.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fasjson/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    def answer(self, path: str) -> tuple[int, bytes]:
        if path == "/fasjson/specs/v1.json":
            return 200, self.spec
        if self.failing:
            return 503, json.dumps({"message": "down for maintenance"}).encode()
        prefix = "/fasjson/v1/users/"
        if path.startswith(prefix) and path.endswith("/"):
            name = path[len(prefix):-1]
            if name in self.users:
                return 200, json.dumps({"result": self.users[name]}).encode()
        return 404, json.dumps({"message": "User not found"}).encode()

    def user_requests(self, name: str) -> int:
        return self.requests[f"/fasjson/v1/users/{name}/"]


@pytest.fixture
def fasjson() -> Iterator[FakeFasjson]:
    server = FakeFasjson()
    server.users["alice"] = {"username": "alice", "emails": ["alice@example.org"],
                             "ircnicks": ["irc:/alice_", "matrix://matrix.org/alice"],
                             "locale": "en-US", "timezone": "UTC"}
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(5)


@pytest.fixture
def config(fasjson: FakeFasjson, tmp_path: Path) -> Config:
    return config_from_dict({"database_url": f"sqlite:///{tmp_path / 'n.db'}",
                             "fasjson": {"url": fasjson.url, "auth": "none",
                                         "cache_ttl": "10m"}},
                            str(tmp_path / "notifier.toml"))


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    with Store.from_config(config) as s:
        yield s


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_source_fetches_profiles(fasjson: FakeFasjson) -> None:
    source = FasjsonSource(fasjson.url, "none")
    assert source.fetch("alice") == {"name": "alice", "emails": ["alice@example.org"],
                                     "ircnicks": ["alice_"], "groups": [], "delivery": None}
    assert source.fetch("nobody") is None
    assert fasjson.requests["/fasjson/specs/v1.json"] == 1


def test_profiles_are_cached_until_the_ttl_passes(config: Config, store: Store,
                                                  fasjson: FakeFasjson) -> None:
    clock = Clock()
    directory = UserDirectory(config, store, clock=clock)
    first = directory.get("alice")
    assert first == {"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice_"],
                     "groups": [], "delivery": None, "feed_token": None, "source": "fasjson"}
    assert fasjson.user_requests("alice") == 1
    fasjson.users["alice"]["emails"] = ["new@example.org"]
    clock.now += 599
    assert directory.get("alice") == first
    assert fasjson.user_requests("alice") == 1
    clock.now += 1
    assert directory.get("alice")["emails"] == ["new@example.org"]  # type: ignore[index]
    assert fasjson.user_requests("alice") == 2


def test_the_cache_survives_a_restart(config: Config, store: Store,
                                      fasjson: FakeFasjson) -> None:
    clock = Clock()
    UserDirectory(config, store, clock=clock).get("alice")
    with Store.from_config(config) as reopened:
        again = UserDirectory(config, reopened, clock=clock).get("alice")
    assert again is not None and again["emails"] == ["alice@example.org"]
    assert fasjson.user_requests("alice") == 1


def test_unknown_users_are_cached_too(config: Config, store: Store,
                                      fasjson: FakeFasjson) -> None:
    clock = Clock()
    directory = UserDirectory(config, store, clock=clock)
    assert directory.get("bob") is None
    assert directory.get("bob") is None
    assert fasjson.user_requests("bob") == 1
    fasjson.users["bob"] = {"username": "bob", "emails": ["bob@example.org"]}
    clock.now += 600
    assert directory.get("bob")["emails"] == ["bob@example.org"]  # type: ignore[index]


def test_local_records_win_and_fasjson_is_not_asked(config: Config, store: Store,
                                                    fasjson: FakeFasjson) -> None:
    store.import_users([{"name": "alice", "emails": ["local@example.org"]}])
    user = UserDirectory(config, store).get("alice")
    assert user is not None
    assert user["emails"] == ["local@example.org"]
    assert user["source"] == "local"
    assert user["feed_token"]
    assert fasjson.user_requests("alice") == 0


def test_an_outage_uses_the_expired_profile(config: Config, store: Store,
                                            fasjson: FakeFasjson,
                                            caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    directory = UserDirectory(config, store, clock=clock)
    directory.get("alice")
    fasjson.failing = True
    clock.now += 3600
    assert directory.get("alice")["emails"] == ["alice@example.org"]  # type: ignore[index]
    assert "using the profile of 'alice' cached 3600 s ago" in caplog.text
    assert "HTTP 503" in caplog.text
    with pytest.raises(DirectoryError, match=r"looking up 'carol' failed: HTTP 503"):
        directory.get("carol")


def test_unreachable_fasjson(store: Store, tmp_path: Path) -> None:
    from tests.conftest import free_port

    config = config_from_dict({"fasjson": {"url": f"http://127.0.0.1:{free_port()}/fasjson/",
                                           "auth": "none"}}, str(tmp_path / "n.toml"))
    with pytest.raises(DirectoryError, match=r"FASJSON at http://127\.0\.0\.1:\d+/fasjson/"):
        UserDirectory(config, store).get("alice")


def test_without_a_url_only_local_users_exist(store: Store, tmp_path: Path) -> None:
    config = config_from_dict({}, str(tmp_path / "n.toml"))
    directory = UserDirectory(config, store)
    assert directory.source is None
    assert directory.get("alice") is None
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]}])
    found = directory.get("alice")
    assert found is not None and found["emails"] == ["alice@example.org"]


def test_bad_auth_mode(fasjson: FakeFasjson) -> None:
    with pytest.raises(ConfigError, match=r"\[fasjson\] auth must be one of gssapi, none"):
        FasjsonSource(fasjson.url, "kerberos")


def test_users_show_falls_back_to_fasjson(config: Config, fasjson: FakeFasjson,
                                          tmp_path: Path) -> None:
    path = tmp_path / "cli.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "cli.db"}"\n'
                    f'[fasjson]\nurl = "{fasjson.url}"\nauth = "none"\n')
    result = run("notifier", "users", "show", "alice", "--json", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "name": "alice", "emails": ["alice@example.org"], "ircnicks": ["alice_"],
        "groups": [], "delivery": None, "feed_token": None, "feed_url": None, "source": "fasjson"}
    # In-process from here on: importing fasjson-client takes seconds.
    missing = CliRunner().invoke(cli, ["users", "show", "nobody", "--config", str(path)])
    assert missing.exit_code == 1
    assert "no user 'nobody'" in missing.output
    assert fasjson.user_requests("nobody") == 1
