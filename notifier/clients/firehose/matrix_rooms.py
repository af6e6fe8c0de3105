"""Matrix rooms the firehose was not configured with: direct rooms, and invitations.

What a command answers privately (``last``) goes to the direct room the bot
shares with the asker: one it made before (kept here, and in its ``m.direct``
account data, so a restarted bot finds it again) where the person is still
joined or invited, else a new private room with ``is_direct`` and the person
invited. An invitation is accepted when it is to one of the configured rooms
(by id, or by the canonical alias in the invitation), and declined otherwise,
so nobody can pull the bot into rooms it was not meant to be in.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from nio import (
    AsyncClient,
    DirectRoomsErrorResponse,
    DirectRoomsResponse,
    InviteAliasEvent,
    InviteMemberEvent,
    RoomCreateResponse,
    RoomPreset,
)
from nio.responses import InviteInfo

log = logging.getLogger(__name__)


class DirectRooms:
    """The bot's direct rooms, by person; used from the client's event loop only."""

    def __init__(self, name: str, user_id: str):
        self.name = name
        self.user_id = user_id
        self._rooms: dict[str, str] = {}

    def is_direct(self, room_id: str) -> bool:
        """Whether ``room_id`` is one of the bot's direct rooms."""
        return room_id in self._rooms.values()

    def forget(self, person: str) -> None:
        """The room with ``person`` refused a message: look for one again next time."""
        self._rooms.pop(person, None)

    async def room_for(self, client: AsyncClient, person: str) -> str | None:
        """The direct room with ``person``; None when the homeserver refuses to make one.

        A homeserver that cannot be reached raises, as every call of the client does.
        """
        known = self._rooms.get(person)
        if known is not None and (known not in client.rooms or _member(client, known, person)):
            return known  # not synced yet: the bot has just made it
        listed = await client.list_direct_rooms()
        if isinstance(listed, DirectRoomsResponse):
            direct = {k: list(v) for k, v in listed.rooms.items()}
        elif isinstance(listed, DirectRoomsErrorResponse) and listed.status_code == "M_NOT_FOUND":
            direct = {}  # never set
        else:
            log.warning("%s: cannot read m.direct: %s", self.name, listed)
            direct = {}
        for candidate in reversed(direct.get(person, [])):
            if candidate in client.rooms and _member(client, candidate, person):
                self._rooms[person] = candidate
                return candidate
        created = await client.room_create(is_direct=True, invite=[person],
                                           preset=RoomPreset.trusted_private_chat)
        if not isinstance(created, RoomCreateResponse):
            log.warning("%s: cannot make a direct room with %s: %s", self.name, person,
                        getattr(created, "message", created))
            return None
        self._rooms[person] = created.room_id
        direct[person] = [*direct.get(person, []), created.room_id]
        path = f"/_matrix/client/v3/user/{quote(self.user_id, safe='')}/account_data/m.direct"
        answer = await client.send("PUT", path, json.dumps(direct), {
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json"})
        if answer.status != 200:  # the room works; m.direct is for finding it again
            log.warning("%s: cannot mark %s as direct with %s: HTTP %d", self.name,
                        created.room_id, person, answer.status)
        log.info("%s: made the direct room %s with %s", self.name, created.room_id, person)
        return created.room_id


def _member(client: AsyncClient, room_id: str, person: str) -> bool:
    room = client.rooms[room_id]
    return person in room.users or person in room.invited_users


def invitation(info: InviteInfo) -> tuple[set[str], str]:
    """The aliases an invitation names for its room (lowercased), and who sent it."""
    aliases = {e.canonical_alias.lower() for e in info.invite_state
               if isinstance(e, InviteAliasEvent) and e.canonical_alias}
    senders = [e.sender for e in info.invite_state
               if isinstance(e, InviteMemberEvent) and e.membership == "invite"]
    return aliases, senders[-1] if senders else "someone"
