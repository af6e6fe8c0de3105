"""What people can ask the bot, in a channel (``nick: command``) or by private message.

* ``help``: what follows, by private message;
* ``last [N] [filter]``: the N (default 5, at most :data:`MAX_LAST`) newest
  messages of the bot's history that match ``filter`` (an app, a topic glob,
  or words of the summary), by private message;
* ``pause`` and ``resume`` (in a channel, or ``pause #channel`` by private
  message): stop and start posting to the channel; for its operators only.
  What arrives while a channel is paused is dropped and counted.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .lines import Colours, app_of, message_line, summary_of
from .network import Network

if TYPE_CHECKING:
    from .matrix import MatrixServer

    #: where a command was said: an IRC network or a Matrix homeserver
    Peer = Network | MatrixServer

DEFAULT_LAST = 5
MAX_LAST = 20

HELP = (
    "I post the message bus here. Commands (in a channel, start with my nick and a colon):",
    "help: this text.",
    "last [N] [filter]: the N newest messages (at most 20), by private message; the filter is "
    "an app, a topic glob or words of the summary.",
    "pause / resume (or pause #channel by private message): stop or start posting; channel "
    "operators only.",
)


def matches(record: Mapping[str, Any], words: str) -> bool:
    """Whether ``record`` matches a ``last`` filter: app, topic glob, or words of the summary."""
    if not words:
        return True
    lowered = words.lower()
    if app_of(record).lower() == lowered:
        return True
    if any(c in words for c in "*?[") and fnmatch.fnmatchcase(str(record.get("topic")), words):
        return True
    return lowered in summary_of(record).lower() or lowered == str(record.get("topic")).lower()


class Commands:
    """Answers commands from ``history`` (newest last) with ``colours``."""

    def __init__(self, history: deque[Mapping[str, Any]], colours: Colours):
        self.history = history
        self.colours = colours

    def __call__(self, network: Peer, nick: str, target: str | None, text: str) -> None:
        words = text.strip().split()
        if not words:
            return
        command, args = words[0].lower(), words[1:]
        if command == "help":
            for line in HELP:
                network.reply(nick, line)
        elif command == "last":
            self.last(network, nick, args)
        elif command in ("pause", "resume"):
            self.pause(network, nick, target, args, command == "pause")
        else:
            network.reply(nick, f"I do not know {command!r}; try help.")

    def last(self, network: Peer, nick: str, args: list[str]) -> None:
        count = DEFAULT_LAST
        if args and args[0].isdigit():
            count = max(1, min(MAX_LAST, int(args[0])))
            args = args[1:]
        words = " ".join(args)
        found = [r for r in reversed(list(self.history)) if matches(r, words)][:count]
        if not found:
            network.reply(nick, "Nothing in my history matches." if words else
                          "Nothing in my history yet.", private=True)
            return
        for record in reversed(found):
            network.reply(nick, message_line(record, self.colours, True), private=True)

    def pause(self, network: Peer, nick: str, target: str | None, args: list[str],
              paused: bool) -> None:
        name = target or (args[0] if args else "")
        channel = network.channels.get(name.lower())
        if channel is None:
            network.reply(nick, "Which channel? Say it in the channel, or name it: "
                          "pause #channel." if not name else f"I do not post to {name}.")
            return
        if not network.is_op(channel, nick):
            network.reply(nick, f"Only operators of {channel.name} can do that.")
            return
        dropped = network.pause(channel, paused)
        word = "paused" if paused else "resumed"
        extra = f" ({dropped} waiting messages dropped)" if dropped else ""
        network.reply(nick, f"{channel.name} {word}{extra}.")
