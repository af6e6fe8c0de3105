"""Matrix rooms the firehose was not configured with: direct rooms, and invitations.

A direct room is one the bot shares with one person, to take their commands
without being named (as an IRC private message) and to answer them there, and
to answer ``last`` asked in a configured room. The bot knows its direct rooms
by its ``m.direct`` account data (so a restarted bot finds them again), read
when it syncs, and keeps it up to date: a room it makes for an answer (a
private room with ``is_direct``, the person invited), and a room a person
invites it to as a direct chat (the invitation's member event has
``is_direct``), which it accepts. Every other invitation is accepted when it
is to one of the configured rooms (by id, or by the canonical alias in the
invitation), and declined otherwise, so nobody can pull the bot into rooms it
was not meant to be in.

A flood of direct invitations costs no more than itself: the bot keeps one
direct room per person (a newer one replaces the older, which it leaves) and
at most :data:`MAX_DIRECT` people, leaving the room of the one it heard from
least recently to make room for another. Each invitation so costs one join,
at most one leave and one write of ``m.direct``; beyond
:data:`ACCEPTS_PER_MINUTE` in a minute, direct invitations are declined (a
person can invite again), so that a flood does not hold up the firehose.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict, deque
from urllib.parse import quote

from nio import (
    AsyncClient,
    DirectRoomsErrorResponse,
    DirectRoomsResponse,
    InviteAliasEvent,
    InviteMemberEvent,
    JoinResponse,
    RoomCreateResponse,
    RoomPreset,
)
from nio.events.invite_events import InviteEvent
from nio.responses import InviteInfo

log = logging.getLogger(__name__)

#: people the bot keeps a direct room with, at most
MAX_DIRECT = 1000
#: direct invitations accepted in a minute, at most; more are declined
ACCEPTS_PER_MINUTE = 30


class DirectRooms:
    """The bot's direct rooms, by person; used from the client's event loop only."""

    def __init__(self, name: str, user_id: str, limit: int = MAX_DIRECT,
                 per_minute: int = ACCEPTS_PER_MINUTE):
        self.name = name
        self.user_id = user_id
        self.limit = limit
        self.per_minute = per_minute
        #: the room kept with each person, the least recently heard from first
        self._rooms: OrderedDict[str, str] = OrderedDict()
        #: every room known as direct (kept or listed in m.direct), and its person
        self._people: dict[str, str] = {}
        #: m.direct as last read or written
        self._listed: dict[str, list[str]] = {}
        #: when the last direct invitations were accepted (time.monotonic)
        self._accepted: deque[float] = deque()

    def person_of(self, room_id: str) -> str | None:
        """The person ``room_id`` is the direct room with, or None: not a direct room."""
        return self._people.get(room_id)

    def used(self, person: str) -> None:
        """``person`` was heard from: their room is the last to be left for another."""
        if person in self._rooms:
            self._rooms.move_to_end(person)

    def forget(self, person: str) -> None:
        """The room with ``person`` refused a message: look for one again next time."""
        self._rooms.pop(person, None)

    async def load(self, client: AsyncClient) -> None:
        """Read ``m.direct``: its rooms the bot is in are its direct rooms."""
        self._listed = await self._read(client)
        for person, rooms in self._listed.items():
            for room_id in rooms:
                self._people[room_id] = person
            joined = [r for r in rooms if r in client.rooms]
            if joined and person not in self._rooms:
                self._rooms[person] = joined[-1]

    async def room_for(self, client: AsyncClient, person: str) -> str | None:
        """The direct room with ``person``; None when the homeserver refuses to make one.

        A homeserver that cannot be reached raises, as every call of the client does.
        """
        known = self._rooms.get(person)
        if known is not None and (known not in client.rooms or _member(client, known, person)):
            self.used(person)
            return known  # not synced yet: the bot has just made it
        self._listed = await self._read(client)
        for candidate in reversed(self._listed.get(person, [])):
            if candidate in client.rooms and _member(client, candidate, person):
                self._rooms[person] = candidate
                self._people[candidate] = person
                self.used(person)
                return candidate
        created = await client.room_create(is_direct=True, invite=[person],
                                           preset=RoomPreset.trusted_private_chat)
        if not isinstance(created, RoomCreateResponse):
            log.warning("%s: cannot make a direct room with %s: %s", self.name, person,
                        getattr(created, "message", created))
            return None
        log.info("%s: made the direct room %s with %s", self.name, created.room_id, person)
        await self._keep(client, person, created.room_id)
        return created.room_id

    async def accept(self, client: AsyncClient, room_id: str, person: str) -> bool:
        """Join ``room_id``, a direct chat ``person`` invited the bot to, and keep it;
        False when it cannot, or too many came in the last minute (to be declined)."""
        now = time.monotonic()
        while self._accepted and now - self._accepted[0] >= 60.0:
            self._accepted.popleft()
        if len(self._accepted) >= self.per_minute:
            log.warning("%s: declining the direct chat %s of %s: more than %d direct "
                        "invitations in a minute", self.name, room_id, person, self.per_minute)
            return False
        self._accepted.append(now)
        joined = await client.join(room_id)
        if not isinstance(joined, JoinResponse):
            log.warning("%s: cannot join the direct room %s of %s: %s", self.name, room_id,
                        person, getattr(joined, "message", joined))
            return False
        log.info("%s: joined the direct room %s of %s", self.name, room_id, person)
        await self._keep(client, person, room_id)
        return True

    async def _keep(self, client: AsyncClient, person: str, room_id: str) -> None:
        """Make ``room_id`` the room with ``person``, leave what it replaces or pushes out,
        and write ``m.direct``."""
        leaving = [r for r in self._listed.get(person, []) if r != room_id]
        leaving += [r for r, p in self._people.items() if p == person and r not in leaving
                    and r != room_id]
        self._drop(person)
        self._rooms[person], self._people[room_id] = room_id, person
        self._listed[person] = [room_id]
        while len(self._rooms) > self.limit:
            oldest = next(iter(self._rooms))
            log.info("%s: leaving the direct room with %s: more than %d direct rooms",
                     self.name, oldest, self.limit)
            leaving += [*self._listed.get(oldest, []),
                        *(r for r, p in self._people.items() if p == oldest)]
            self._drop(oldest)
        await self._write(client)
        for room in dict.fromkeys(leaving):
            if room in client.rooms:
                await client.room_leave(room)

    def _drop(self, person: str) -> None:
        self._rooms.pop(person, None)
        self._listed.pop(person, None)
        for room in [r for r, p in self._people.items() if p == person]:
            del self._people[room]

    async def _read(self, client: AsyncClient) -> dict[str, list[str]]:
        listed = await client.list_direct_rooms()
        if isinstance(listed, DirectRoomsResponse):
            return {k: list(v) for k, v in listed.rooms.items()}
        if not (isinstance(listed, DirectRoomsErrorResponse)
                and listed.status_code == "M_NOT_FOUND"):  # else never set
            log.warning("%s: cannot read m.direct: %s", self.name, listed)
        return {}

    async def _write(self, client: AsyncClient) -> None:
        path = f"/_matrix/client/v3/user/{quote(self.user_id, safe='')}/account_data/m.direct"
        answer = await client.send("PUT", path, json.dumps(self._listed), {
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json"})
        if answer.status != 200:  # the rooms work; m.direct is for finding them again
            log.warning("%s: cannot write m.direct: HTTP %d", self.name, answer.status)


def _member(client: AsyncClient, room_id: str, person: str) -> bool:
    room = client.rooms[room_id]
    return person in room.users or person in room.invited_users


class Invitation:
    """What an invitation tells: its room's aliases (lowercased), who sent it, and
    whether it is to a direct chat."""

    def __init__(self, info: InviteInfo, me: str):
        events: list[InviteEvent] = list(info.invite_state)
        self.aliases = {e.canonical_alias.lower() for e in events
                        if isinstance(e, InviteAliasEvent) and e.canonical_alias}
        mine = [e for e in events if isinstance(e, InviteMemberEvent)
                and e.membership == "invite" and e.state_key == me]
        senders = mine or [e for e in events if isinstance(e, InviteMemberEvent)
                           and e.membership == "invite"]
        self.sender = senders[-1].sender if senders else "someone"
        self.direct = bool(mine) and mine[-1].content.get("is_direct") is True
