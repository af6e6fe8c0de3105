"""What the bot knows of one channel: its settings, filter and queue, and the server's word."""

from __future__ import annotations

from ...config import FirehoseChannel
from .filters import ChannelFilter
from .queue import ChannelQueue


class Channel:
    """A channel's settings, filter, queue and what the server told about it."""

    def __init__(self, spec: FirehoseChannel):
        self.spec = spec
        self.name = spec.name
        self.filter = ChannelFilter(spec.include, spec.exclude)
        self.queue = ChannelQueue(spec.name, spec.max_delay)
        self.joined = False
        self.no_colours = False  # channel mode +c
        self.paused = False
        self.ops: set[str] = set()
        self.rejoin_at = 0.0
        self.rejoins = 0

    def names(self, names: str) -> None:
        """Note the operators of a NAMES reply (``@nick``, or ``~``/``&`` above them)."""
        for name in names.split():
            if name[:1] in "@~&":
                self.ops.add(name.lstrip("@~&%+").lower())

    def modes(self, modes: str, params: list[str]) -> None:
        """Follow a MODE change or a 324 reply: ``+c`` (no colours) and operators."""
        adding, params = True, list(params)
        for char in modes:
            if char in "+-":
                adding = char == "+"
            elif char == "c":
                self.no_colours = adding
            elif char in "ov" and params:
                nick = params.pop(0).lower()
                if char == "o":
                    (self.ops.add if adding else self.ops.discard)(nick)
            elif char in "bkeIlhqa" and params and (adding or char != "l"):
                params.pop(0)
