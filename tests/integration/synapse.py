"""A real Matrix homeserver for tests: Synapse on SQLite, on a free loopback port.

:class:`Synapse` writes its own ``homeserver.yaml`` (no federation, no key
servers, rate limits off unless asked for), starts ``synapse.app.homeserver``
and can stop and start it again on the same port and database.
:meth:`Synapse.register` makes users with the shared-secret admin API.
:class:`MatrixPerson` is a second real client, a person reading their
messages: it syncs, joins the rooms it is invited to and records every
message others send there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from signedjson.key import generate_signing_key, write_signing_keys

from tests.conftest import free_port, wait_for_port

#: a rate limit no test reaches
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
_LIMITS = ("rc_message", "rc_registration", "rc_login", "rc_admin_redaction", "rc_joins",
           "rc_invites", "rc_3pid_validation", "rc_joins_per_room", "rc_room_creation",
           "rc_presence", "rc_delayed_event_mgmt")


def _yaml(value: Any, indent: int = 0) -> str:
    """YAML for plain dicts, lists and scalars (JSON scalars are YAML)."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict):
                body = _yaml(item, indent + 2).lstrip()
                lines.append(f"{pad}- {body}")
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
        return "\n".join(lines)
    return pad + json.dumps(value)


#: the person's sync: room history long enough for every test's messages
_FILTER = '{"room": {"timeline": {"limit": 200}}, "presence": {"types": []}}'


class Synapse:
    """One homeserver, ``localhost``, on ``http://127.0.0.1:<port>``.

    ``limits`` replaces the ``rc_*`` settings named in it (tight message
    limits for the rate-limit test); every other limit is out of reach.
    """

    server_name = "localhost"

    def __init__(self, workdir: Path, limits: dict[str, Any] | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.secret = "test-shared-secret"
        self.limits = limits or {}
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "homeserver.yaml"

    def _write_config(self) -> None:
        key = self.workdir / "signing.key"
        if not key.exists():
            with open(key, "w") as out:
                write_signing_keys(out, [generate_signing_key("a_test")])
        (self.workdir / "log.yaml").write_text(
            "version: 1\n"
            "formatters:\n  f:\n    format: '%(asctime)s %(name)s %(levelname)s %(message)s'\n"
            "handlers:\n  file:\n    class: logging.FileHandler\n    formatter: f\n"
            f"    filename: {self.workdir / 'homeserver.log'}\n"
            "root:\n  level: INFO\n  handlers: [file]\n"
            "disable_existing_loggers: false\n")
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "pid_file": str(self.workdir / "homeserver.pid"),
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http",
                           "tls": False, "x_forwarded": False,
                           "resources": [{"names": ["client"], "compress": False}]}],
            "database": {"name": "sqlite3",
                         "args": {"database": str(self.workdir / "homeserver.db")}},
            "log_config": str(self.workdir / "log.yaml"),
            "media_store_path": str(self.workdir / "media"),
            "registration_shared_secret": self.secret,
            "report_stats": False,
            "macaroon_secret_key": "test-macaroon-secret",
            "form_secret": "test-form-secret",
            "signing_key_path": str(key),
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "enable_metrics": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
        }
        for name in _LIMITS:
            config[name] = self.limits.get(name, _UNLIMITED)
        config["rc_joins"] = self.limits.get("rc_joins", {"local": _UNLIMITED,
                                                          "remote": _UNLIMITED})
        config["rc_invites"] = self.limits.get("rc_invites", {
            "per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED})
        config["rc_login"] = {"address": _UNLIMITED, "account": _UNLIMITED,
                              "failed_attempts": _UNLIMITED}
        self.config_path.write_text(_yaml(config) + "\n")

    def start(self, timeout: float = 60.0) -> Synapse:
        """Start the homeserver and wait until its client API answers."""
        with open(self.workdir / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        wait_for_port(self.port, timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"synapse exited with {self.proc.returncode}; see "
                                   f"{self.workdir / 'homeserver.log'}")
            try:
                if httpx.get(f"{self.url}/_matrix/client/versions", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"synapse did not answer within {timeout} s")

    def stop(self) -> None:
        """Stop the homeserver (SIGTERM, then SIGKILL). Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def register(self, name: str, password: str = "pw-for-tests", admin: bool = False
                 ) -> Account:
        """A new user through the shared-secret registration API, logged in."""
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        nonce = httpx.get(endpoint, timeout=10).json()["nonce"]
        mac_hex = hmac.new(self.secret.encode(), b"\x00".join(
            p.encode() for p in (nonce, name, password, "admin" if admin else "notadmin")),
            hashlib.sha1).hexdigest()
        answer = httpx.post(endpoint, json={"nonce": nonce, "username": name,
                                            "password": password, "admin": admin,
                                            "mac": mac_hex}, timeout=10)
        answer.raise_for_status()
        data = answer.json()
        return Account(self.url, data["user_id"], data["access_token"])


@dataclass
class Account:
    """A user on a homeserver, with an access token."""

    url: str
    user_id: str
    token: str

    def call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.url}/_matrix/client/v3{path}", json=json,
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def account_data(self, kind: str) -> dict[str, Any]:
        answer = self.call("GET", f"/user/{quote(self.user_id, safe='')}/account_data/{kind}")
        return answer.json() if answer.status_code == 200 else {}


@dataclass
class Message:
    """One message as the person's client saw it."""

    room_id: str
    sender: str
    content: dict[str, Any]


@dataclass
class MatrixPerson:
    """A person's client: syncs, joins invites, records others' messages."""

    account: Account
    since: str | None = None
    seen: set[str] = field(default_factory=set)
    joined: set[str] = field(default_factory=set)

    def poll(self, timeout: float) -> list[Message]:
        """Messages that came since the last call, waiting up to ``timeout`` s for one."""
        got: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            params: dict[str, Any] = {"timeout": int(min(left, 5.0) * 1000),
                                      "filter": _FILTER}
            if self.since:
                params["since"] = self.since
            answer = httpx.get(f"{self.account.url}/_matrix/client/v3/sync", params=params,
                               headers={"Authorization": f"Bearer {self.account.token}"},
                               timeout=30)
            answer.raise_for_status()
            data = answer.json()
            self.since = data["next_batch"]
            rooms = data.get("rooms", {})
            for room_id in rooms.get("invite", {}):
                if room_id not in self.joined:
                    self.account.call("POST", f"/join/{quote(room_id, safe='')}", json={})
                    self.joined.add(room_id)
            for room_id, room in rooms.get("join", {}).items():
                self.joined.add(room_id)
                for event in room.get("timeline", {}).get("events", []):
                    if event.get("type") != "m.room.message" or \
                            event.get("sender") == self.account.user_id or \
                            event["event_id"] in self.seen:
                        continue
                    self.seen.add(event["event_id"])
                    got.append(Message(room_id, event["sender"], event["content"]))
            if got or time.monotonic() >= deadline:
                return got
