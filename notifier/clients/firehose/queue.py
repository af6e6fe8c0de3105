"""One channel's queue of lines, folded in a storm so that it never falls behind.

Entries wait in order. Each is one message's line, or a :class:`~.lines.Fold`
of one app's messages. When a new message would wait longer than the
channel's ``max_delay`` (estimated from the entries ahead of it on the
network and the network's line rate), or the oldest entry has already waited
that long (a slow or absent connection), every single message in the queue
is folded into its app's fold. From then until the queue runs empty (the
storm is over), every message joins its app's fold, a new one at the end of
the queue once the previous was posted. The queue is then at most one entry
per app, so a storm costs a few lines per rate period however many messages
it brings, a message waits about (apps in the storm) / (line rate) seconds,
and every message is either posted on its own or counted in a fold line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .lines import Colours, Fold, app_of, message_line

#: entries a channel keeps at most (a fold per app, so only a bus with this many
#: apps in one storm reaches it); past it the oldest are dropped and counted
MAX_ENTRIES = 500


@dataclass
class Single:
    """One message waiting for its own line."""

    app: str
    record: Mapping[str, Any]
    at: float


Entry = Single | Fold


def entry_count(entry: Entry) -> int:
    """How many messages ``entry`` holds."""
    return entry.count if isinstance(entry, Fold) else 1


class ChannelQueue:
    """The lines waiting for one channel; not thread-safe (the network's lock guards it)."""

    def __init__(self, name: str, max_delay: float):
        self.name = name
        self.max_delay = max_delay
        self.entries: deque[Entry] = deque()
        self.folds: dict[str, Fold] = {}
        #: folding every message, from a fold until the queue runs empty
        self.folding = False
        #: messages dropped because the queue was full, not yet counted by metrics
        self.overflow = 0

    def __len__(self) -> int:
        return len(self.entries)

    def push(self, record: Mapping[str, Any], at: float, wait: float) -> None:
        """Queue one message, arrived at ``at``; ``wait`` is how long the line after
        the network's current last one would wait (seconds)."""
        app = app_of(record)
        fold = self.folds.get(app)
        if fold is None and self.folding:
            fold = self.folds[app] = Fold(app)
            self.entries.append(fold)
        if fold is not None:
            fold.add(record, at)
            return
        self.entries.append(Single(app, record, at))
        if wait > self.max_delay:
            self.fold()
        while len(self.entries) > MAX_ENTRIES:
            dropped = self.entries.popleft()
            self.overflow += dropped.count if isinstance(dropped, Fold) else 1
            if isinstance(dropped, Fold):
                self.folds.pop(dropped.app, None)

    def fold(self) -> None:
        """Fold every single message into its app's fold, at the place of the app's first."""
        self.folding = True
        entries: deque[Entry] = deque()
        for entry in self.entries:
            if isinstance(entry, Fold):
                entries.append(entry)
                continue
            fold = self.folds.get(entry.app)
            if fold is None:
                fold = self.folds[entry.app] = Fold(entry.app)
                entries.append(fold)
            fold.add(entry.record, entry.at)
        self.entries = entries

    def oldest(self) -> float | None:
        """When the oldest waiting message arrived, or None when nothing waits."""
        if not self.entries:
            return None
        head = self.entries[0]
        return head.first_at if isinstance(head, Fold) else head.at

    def pop(self, now: float, colours: Colours, colour: bool
            ) -> tuple[Entry, str, int, int] | None:
        """Take the next line to post: ``(entry, text, messages alone, messages folded)``.

        Give the entry back with :meth:`requeue` if the line cannot be written.
        """
        if not self.entries:
            return None
        oldest = self.oldest()
        if oldest is not None and now - oldest > self.max_delay and \
                any(isinstance(e, Single) for e in self.entries):
            self.fold()
        entry = self.entries.popleft()
        if not self.entries:
            self.folding = False
        if isinstance(entry, Fold):
            self.folds.pop(entry.app, None)
            if entry.count == 1 and entry.first is not None:
                # a fold of one reads better as the message itself
                return entry, message_line(entry.first, colours, colour), 1, 0
            return entry, entry.line(colours, colour), 0, entry.count
        return entry, message_line(entry.record, colours, colour), 1, 0

    def requeue(self, entry: Entry) -> None:
        """Put an entry taken by :meth:`pop` back at the front: its line was not written."""
        if isinstance(entry, Fold):
            current = self.folds.get(entry.app)
            if current is not None:
                # messages that came since joined a new fold: merge them back
                for topic, n in current.topics.items():
                    entry.topics[topic] = entry.topics.get(topic, 0) + n
                entry.link = current.link or entry.link
                self.entries = deque(e for e in self.entries if e is not current)
            self.folds[entry.app] = entry
        self.entries.appendleft(entry)

    def clear(self) -> int:
        """Drop everything waiting; the number of messages dropped."""
        count = sum(e.count if isinstance(e, Fold) else 1 for e in self.entries)
        self.entries.clear()
        self.folds.clear()
        self.folding = False
        return count
