"""The commands said in a Matrix room's timeline, as :mod:`.matrix` takes them.

In a configured room a command starts with the bot's name (its user id,
localpart or display name there) and a colon or comma; in a direct room every
message is one, as an IRC private message. What was said before the bot's own
join in the same timeline is history (a room's backlog comes with the sync
after joining), not a command to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from nio import Event, MegolmEvent, RoomMemberEvent, RoomMessageText


def addressed(names: Iterable[str], body: str) -> str | None:
    """The command in ``body`` if it starts with one of ``names`` and a colon or comma."""
    lowered = body.strip().lower()
    for name in sorted((n for n in names if n), key=len, reverse=True):
        head = name.lower()
        if lowered.startswith(head) and lowered[len(head):len(head) + 1] in (":", ","):
            return body.strip()[len(head) + 1:].strip()
    return None


def commands_in(events: Iterable[Event], me: str, names: Iterable[str], direct: bool
                ) -> list[tuple[str, str | None]]:
    """``(sender, command)`` for each command in ``events``, oldest first; in a direct
    room, an encrypted message is ``(sender, None)``: the bot cannot read it."""
    names = list(names)
    said: list[tuple[str, str | None]] = []
    for event in events:
        if isinstance(event, RoomMemberEvent) and event.state_key == me and \
                event.membership == "join" and event.prev_membership != "join":
            said.clear()
        elif event.sender == me:
            continue
        elif isinstance(event, RoomMessageText):
            text = addressed(names, event.body)
            if text is None and direct:
                text = event.body.strip()
            if text:
                said.append((event.sender, text))
        elif direct and isinstance(event, MegolmEvent):
            said.append((event.sender, None))
    return said
