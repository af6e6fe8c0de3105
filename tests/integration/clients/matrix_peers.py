"""Rooms, people and a bot of the Matrix firehose tests, on a real Synapse.

Rooms are made by people through the client API (so their creator is their
moderator); :func:`read` waits, with a deadline, for what a person's client
sees; the bot is a :class:`~.firehose_peers.Bot` whose only network is one
``[[firehose.matrix]]``.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any
from urllib.parse import quote

from notifier.clients.firehose.matrix import MatrixServer
from tests.conftest import wait_for
from tests.integration.synapse import Account, MatrixPerson, Message, Synapse

from .firehose_peers import Bot

FOLD = re.compile(r"^(?P<app>[\w-]+): (?P<n>\d+) more \(")
room_names = itertools.count()


def make_room(owner: Account, *others: Account) -> tuple[str, str]:
    """A public room of ``owner`` that ``others`` joined: (room id, alias)."""
    name = f"firehose{next(room_names)}"
    answer = owner.call("POST", "/createRoom", {"preset": "public_chat",
                                                "room_alias_name": name})
    answer.raise_for_status()
    room_id = answer.json()["room_id"]
    for other in others:
        other.call("POST", f"/join/{quote(room_id, safe='')}", json={}).raise_for_status()
    return room_id, f"#{name}:{Synapse.server_name}"


def say(account: Account, room_id: str, text: str) -> None:
    txn = f"t{time.monotonic_ns()}"
    account.call("PUT", f"/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}",
                 {"msgtype": "m.text", "body": text}).raise_for_status()


def promote(owner: Account, room_id: str, user: Account, level: int) -> None:
    path = f"/rooms/{quote(room_id, safe='')}/state/m.room.power_levels"
    levels = owner.call("GET", path).json()
    levels.setdefault("users", {})[user.user_id] = level
    owner.call("PUT", path, levels).raise_for_status()


def direct_chat(owner: Account, invitee: str, is_direct: bool = True) -> str:
    """A private room of ``owner`` with ``invitee`` invited, as a direct chat (or not)."""
    answer = owner.call("POST", "/createRoom", {"preset": "trusted_private_chat",
                                                "is_direct": is_direct, "invite": [invitee]})
    answer.raise_for_status()
    return str(answer.json()["room_id"])


def membership(account: Account, room_id: str, user_id: str) -> str | None:
    """``user_id``'s membership of ``room_id``, as ``account`` (a member) sees it."""
    answer = account.call("GET", f"/rooms/{quote(room_id, safe='')}/state/m.room.member/"
                                 f"{quote(user_id, safe='')}")
    return answer.json().get("membership") if answer.status_code == 200 else None


def matrix(synapse: Synapse, bot: Account, rooms: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:
    """A ``[[firehose.matrix]]`` whose rooms leave out the bus probes."""
    for room in rooms:
        room.setdefault("exclude", {}).setdefault("applications", []).append("probe")
    return {"name": "synapse", "homeserver": synapse.url, "user_id": bot.user_id,
            "access_token": bot.token, "line_rate": 5.0, "burst": 5, "rooms": rooms, **extra}


def server(bot: Bot) -> MatrixServer:
    found = bot.firehose.networks[0]
    assert isinstance(found, MatrixServer)
    return found


def joined(bot: Bot) -> None:
    wait_for(lambda: server(bot).connected and all(
        r.joined for r in server(bot).channels.values()), "the bot to join its rooms", 20)


def read(person: MatrixPerson, until: Any, what: str, timeout: float = 20.0
         ) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        assert left > 0, f"{what}: saw {[(m.room_id, m.content.get('body')) for m in got]}"
        got += person.poll(min(1.0, left))
    return got


def total(got: list[Message], room_id: str) -> int:
    """Messages posted to ``room_id``, alone or counted in fold lines."""
    count = 0
    for message in got:
        if message.room_id != room_id:
            continue
        body = message.content.get("body", "")
        fold = FOLD.match(body)
        count += int(fold["n"]) if fold else body.startswith("[")
    return count


