"""A real Matrix peer for the contract suite: Synapse, and the people's own clients.

One homeserver (:class:`~tests.integration.synapse.Synapse`, several seconds
to start) serves every test of the module, through the suite's shared things
(:meth:`MatrixPeer.share`), with one bot account; a test that stops it has it
started again by the next. Each test has its own people alice, bob and zoe
(new accounts, their names numbered per test), each reading with their own
client (:class:`~tests.integration.synapse.MatrixPerson`), which joins the
direct room it is invited to.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from tests.integration.synapse import Account, MatrixPerson, Synapse

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
        self.shared: Any = None
        self.server: Synapse | None = None
        self.run = 0
        self.people: dict[str, MatrixPerson] = {}
        self.bot: Account | None = None

    def share(self, shared: Any) -> None:
        self.shared = shared
        self.server = shared.get("synapse", Synapse)
        self.run = shared.count("matrix-people")

    def start(self) -> None:
        if self.server is None:  # run without the suite's shared things: a server of its own
            self.server = Synapse(self.tmp_path / "synapse")
        server = self.server
        if server.proc is None:
            server.start()
        self.bot = self.shared.get("matrix-bot", lambda _: server.register("notifier-bot")) \
            if self.shared is not None else server.register("notifier-bot")
        self.people = {self.address(name): MatrixPerson(server.register(f"{name}{self.run}"))
                       for name in PEOPLE}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def release(self) -> None:
        """The end of a test: the shared homeserver stays up for the next."""
        if self.shared is None:
            self.stop()

    def config(self) -> dict[str, Any]:
        assert self.server is not None and self.bot is not None
        return {"matrix": {"homeserver": self.server.url, "user_id": self.bot.user_id,
                           "access_token": self.bot.token,
                           "rooms_file": str(self.tmp_path / "matrix-rooms.json")}}

    def address(self, user: str) -> str:
        return f"@{user}{self.run}:{Synapse.server_name}"

    def content(self, summary: str, body: str) -> dict[str, str]:
        return {"body": f"{summary}\n{body}",
                "html": f"<b>{html.escape(summary)}</b><br>{html.escape(body)}"}

    def reject_address(self) -> str | None:
        return f"@nobody:{Synapse.server_name}"

    def received(self, timeout: float) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while True:
            got = [Delivered(address, message.content.get("body", ""), message)
                   for address, person in self.people.items()
                   for message in person.poll(0)]
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(0.05)
