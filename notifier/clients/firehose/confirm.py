"""The lines written since the server last confirmed it read them, to write again after a drop.

A line written to the socket may still be lost: the server (or the path to
it) can fail before reading it, and the bot learns of that only when the
connection drops. So every line written is kept here with the number of the
``PING`` that follows it; the server answers a PING only after reading every
line before it, so its ``PONG`` confirms them all. A PING is sent at most
every :data:`CONFIRM_EVERY` seconds while lines wait for one (not one per
line, to stay well under any flood limit). When the connection drops, the
lines still unconfirmed go back to the front of their channels' queues: a
line may then be posted twice, never lost.
"""

from __future__ import annotations

import itertools
from collections import deque

from .channels import Channel
from .queue import Entry

#: seconds between two PINGs that confirm lines
CONFIRM_EVERY = 1.0
_PREFIX = "confirm-"


class Unconfirmed:
    """Lines written and not yet confirmed, oldest first; not thread-safe (the network's
    connection thread alone uses it)."""

    def __init__(self) -> None:
        self.lines: deque[tuple[int, Channel, Entry]] = deque()
        self._numbers = itertools.count(1)
        #: the number of the next PING: the lines written now wait for it
        self._next = next(self._numbers)
        self._pinged_at = float("-inf")

    def __len__(self) -> int:
        return len(self.lines)

    def written(self, channel: Channel, entry: Entry) -> None:
        """Note one line written to ``channel``."""
        self.lines.append((self._next, channel, entry))

    def ping_due(self, now: float) -> str | None:
        """The token of the PING to send now, or None: lines wait for no PING yet, or the
        last was sent less than :data:`CONFIRM_EVERY` seconds ago."""
        if not self.lines or self.lines[-1][0] != self._next \
                or now - self._pinged_at < CONFIRM_EVERY:
            return None
        self._pinged_at = now
        token, self._next = self._next, next(self._numbers)
        return f"{_PREFIX}{token}"

    def confirmed(self, token: str) -> int:
        """The server answered the PING ``token``: forget the lines before it; how many."""
        if not token.startswith(_PREFIX) or not token[len(_PREFIX):].isdigit():
            return 0  # a keepalive's PONG, or another's
        number, done = int(token[len(_PREFIX):]), 0
        while self.lines and self.lines[0][0] <= number:
            self.lines.popleft()
            done += 1
        return done

    def take(self) -> list[tuple[Channel, Entry]]:
        """Every unconfirmed line, oldest first, forgotten here (the connection is gone)."""
        taken = [(channel, entry) for _, channel, entry in self.lines]
        self.lines.clear()
        self._pinged_at = float("-inf")
        return taken
