"""A real Matrix peer for the contract suite: Synapse, and the people's own clients.

Each test gets a fresh homeserver (:class:`~tests.integration.synapse.Synapse`,
about 4 s to start) with a bot account and the people alice, bob and zoe,
each reading with their own client (:class:`~tests.integration.synapse.MatrixPerson`),
which joins the direct room it is invited to.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from tests.integration.synapse import MatrixPerson, Synapse

from .contract import BasePeer, Delivered

PEOPLE = ("alice", "bob", "zoe")


class MatrixPeer(BasePeer):
    name = "matrix"
    id = "matrix-synapse"
    stoppable = True
    routes_by_address = True
    settle = 0.5

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.server = Synapse(tmp_path / "synapse")
        self.people: dict[str, MatrixPerson] = {}
        self.bot: Any = None

    def start(self) -> None:
        self.server.start()
        self.bot = self.server.register("notifier-bot")
        self.people = {self.address(name): MatrixPerson(self.server.register(name))
                       for name in PEOPLE}

    def stop(self) -> None:
        self.server.stop()

    def config(self) -> dict[str, Any]:
        return {"matrix": {"homeserver": self.server.url, "user_id": self.bot.user_id,
                           "access_token": self.bot.token,
                           "rooms_file": str(self.tmp_path / "matrix-rooms.json")}}

    def address(self, user: str) -> str:
        return f"@{user}:{self.server.server_name}"

    def content(self, summary: str, body: str) -> dict[str, str]:
        return {"body": f"{summary}\n{body}",
                "html": f"<b>{html.escape(summary)}</b><br>{html.escape(body)}"}

    def reject_address(self) -> str | None:
        return f"@nobody:{self.server.server_name}"

    def received(self, timeout: float) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while True:
            got = [Delivered(address, message.content.get("body", ""), message)
                   for address, person in self.people.items()
                   for message in person.poll(0)]
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(0.05)
