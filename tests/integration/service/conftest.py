"""An in-process ``notifier serve`` (:class:`Service`) against a real SMTP server and bus."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser
import pytest

import notifier.service.supervisor as supervisor_module
from notifier.bus.publisher import Publisher
from notifier.config import Config, config_from_dict
from notifier.service.app import Service
from notifier.storage import Store
from tests.conftest import free_port, wait_for
from tests.integration.backends.peers_email import SmtpPeer

GIT = "*.git.*"


@dataclass
class World:
    """A running service, the SMTP server it sends to, and a publisher on its bus."""

    config: Config
    smtp: SmtpPeer
    make: Callable[..., Service]
    service: Service | None = None
    publisher: Publisher | None = None
    published: list[str] = field(default_factory=list)

    def start(self, **kw: Any) -> Service:
        self.service = self.make(**kw)
        self.service.start()
        wait_for(lambda: self.health()[0] == 200, "the service to be ready")
        return self.service

    def publish(self, *texts: str) -> None:
        if self.publisher is None:
            self.publisher = Publisher(self.config)
        for text in texts:
            self.publisher.publish("repo.update", {"log": text}, modname="git")
            self.published.append(text)

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://{self.config.http.listen}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self, kind: str = "") -> tuple[int, dict[str, Any]]:
        """Status and report of /healthz; (0, {}) while HTTP does not answer (restarting)."""
        try:
            status, body = self.get("/healthz" + (f"/{kind}" if kind else ""))
        except OSError:  # refused or reset: the HTTP part is between two runs
            return 0, {}
        return status, json.loads(body)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of ``name`` (0 when it has none yet)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        sample = f"{name}{{{want}}}" if labels else name
        text = self.service.metrics.render().decode()  # type: ignore[union-attr]
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def subjects(self, address: str) -> list[str]:
        return sorted(str(m.message["Subject"]) for m in self.smtp.handler.messages
                      if address in m.rcpt_tos)

    def feed_titles(self, user: str) -> list[str]:
        token = self.service.users.get(user)["feed_token"]  # type: ignore[union-attr,index]
        status, body = self.get(f"/feeds/{user}.atom?token={token}")
        assert status == 200
        return sorted(entry.title for entry in feedparser.parse(body).entries)

    def outbox_states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (_destination, state), n in self.service.outbox.counts().items():  # type: ignore[union-attr]
            counts[state] = counts.get(state, 0) + n
        return counts


def service_config(tmp_path: Path, smtp: SmtpPeer, http_process: bool = False,
                   **delivery: Any) -> Config:
    """HTTP from a thread of the service unless ``http_process``: quicker to start."""
    return config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'notifier.db'}",
        "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
        "http": {"listen": f"127.0.0.1:{free_port()}", "process": http_process},
        "email": {**smtp.config()["email"], "connections": 2},
        "delivery": {"retry_base": 0.2, "retry_max": 1.0, **delivery},
    }, str(tmp_path / "notifier.toml"))


def seed(config: Config, users: list[dict[str, Any]], rules: list[dict[str, Any]]) -> None:
    with Store.from_config(config) as store:
        store.import_users(users)
        store.upsert_rules(rules)


@pytest.fixture
def world_for(tmp_path: Path, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Callable[..., World]]:
    """``world_for(http_process=..., sender_process=...)``: alice gets git messages by mail
    and feed at once, bob by a digest every second. Restarts back off 0.1-0.2 s."""
    monkeypatch.setattr(supervisor_module, "BACKOFF_BASE", 0.2)
    monkeypatch.setattr(supervisor_module, "BACKOFF_CAP", 0.2)
    worlds: list[World] = []

    def make_world(http_process: bool = False, **delivery: Any) -> World:
        config = service_config(tmp_path, smtp, http_process, **delivery)
        seed(config, [
            {"name": "alice", "emails": ["alice@example.org"]},
            {"name": "bob", "emails": ["bob@example.org"],
             "delivery": {"email": {"digest": {"every": "1s", "max_items": 100}}}},
            {"name": "carol", "emails": ["carol@example.org"]},
        ], [
            {"user": "alice", "name": "git", "track": {"kind": "topics", "patterns": [GIT]},
             "destinations": ["email", "rss"]},
            {"user": "bob", "name": "git", "track": {"kind": "topics", "patterns": [GIT]},
             "destinations": ["email"]},
        ])
        world = World(config, smtp, lambda **kw: Service(config, **kw))
        worlds.append(world)
        return world

    yield make_world
    for world in worlds:
        if world.publisher is not None:
            world.publisher.close()
        if world.service is not None and not world.service.stopping.is_set():
            world.service.stop()
