"""An index of topic globs, so looking up a topic costs about the same for 10 or 10,000 globs.

Every glob lands in one of four places, tried in this order:

1. **exact**: a glob with no wildcard (``*``, ``?``, ``[``) is a plain dict key.
2. **prefix**: a glob whose wildcard comes after at least one whole segment,
   such as ``org.fedoraproject.prod.bodhi.*``, is filed under its literal
   prefix up to the last dot before the wildcard
   (``org.fedoraproject.prod.bodhi.``). A topic is looked up once per dot it
   contains, with each of its dotted prefixes.
3. **segment**: a glob that starts with a wildcard but holds a whole literal
   segment, such as ``*.bodhi.update.comment``, is filed under one such
   segment (the one with the fewest globs already, the last one on a tie). If
   the glob matches a topic, that segment is one of the topic's dot-separated
   segments, so a topic is looked up once per segment.
4. **scan**: the rest (``*``, ``*bodhi*``, ``org*``) are tried on every topic.

Only the globs filed under a key the topic hits are then run, each once per
distinct glob however many rules share it. The cost of one lookup is
therefore one dict probe per dot plus one per segment, plus one regular
expression per glob filed under those keys, plus one per glob in the scan
list. The worst case is many *distinct* globs under the same key (say
thousands of ``org.fedoraproject.prod.bodhi.*<name>*``) or in the scan list:
those are all run on every topic that reaches them.

A bus carries few distinct topics, so the globs matching a topic are also
remembered, for up to :data:`CACHE_TOPICS` topics; a remembered topic costs
one dict probe. Adding a rule to a glob already present keeps the cache;
adding or dropping a glob clears it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

WILDCARDS = "*?["
#: how many topics' lookups are remembered before the cache starts afresh
CACHE_TOPICS = 4096
_SEGMENT_SPECIAL = frozenset("*?[]")


def compile_glob(pattern: str) -> Callable[[str], Any]:
    """A function that tells whether a topic matches ``pattern`` as fnmatchcase does."""
    return re.compile(fnmatch.translate(pattern)).match


def _first_wildcard(pattern: str) -> int:
    positions = [i for i in (pattern.find(c) for c in WILDCARDS) if i != -1]
    return min(positions) if positions else -1


def literal_segments(pattern: str) -> list[str]:
    """The dot-separated segments of ``pattern`` that are certainly literal.

    After a ``[`` a dot may sit inside a character class, so only the
    segments before the first ``[`` count then.
    """
    bracket = pattern.find("[")
    if bracket == -1:
        pieces = pattern.split(".")
    else:
        pieces = pattern[:bracket].split(".")[:-1]
    return [p for p in pieces if p and not _SEGMENT_SPECIAL.intersection(p)]


class TopicIndex(Generic[T]):
    """Maps topic globs to sets of items (rules) and finds those whose glob matches a topic."""

    def __init__(self) -> None:
        self._exact: dict[str, set[T]] = {}
        self._prefix: dict[str, dict[str, set[T]]] = {}
        self._segment: dict[str, dict[str, set[T]]] = {}
        self._scan: dict[str, set[T]] = {}
        self._globs: dict[str, Callable[[str], Any]] = {}
        # glob -> (the bucket dict it is filed in, the key there), for removal
        self._place: dict[str, tuple[dict[str, Any], str | None]] = {}
        # topic -> the item sets of the globs that match it
        self._cache: dict[str, tuple[set[T], ...]] = {}

    def __len__(self) -> int:
        """The number of distinct globs."""
        return len(self._exact) + len(self._place)

    def add(self, pattern: str, item: T) -> None:
        """File ``item`` under ``pattern``."""
        if pattern in self._exact:
            self._exact[pattern].add(item)
            return
        place = self._place.get(pattern)
        if place is not None:
            self._items(pattern, place).add(item)
            return
        self._cache.clear()
        wildcard = _first_wildcard(pattern)
        if wildcard == -1:
            self._exact[pattern] = {item}
            return
        self._globs[pattern] = compile_glob(pattern)
        dot = pattern.rfind(".", 0, wildcard)
        if dot != -1:
            key = pattern[:dot + 1]
            self._prefix.setdefault(key, {})[pattern] = {item}
            self._place[pattern] = (self._prefix, key)
            return
        segments = literal_segments(pattern)
        if segments:
            seg = segments[-1]
            load = len(self._segment.get(seg, ()))
            for s in reversed(segments):
                n = len(self._segment.get(s, ()))
                if n < load:
                    seg, load = s, n
            self._segment.setdefault(seg, {})[pattern] = {item}
            self._place[pattern] = (self._segment, seg)
            return
        self._scan[pattern] = {item}
        self._place[pattern] = (self._scan, None)

    def _items(self, pattern: str, place: tuple[dict[str, Any], str | None]) -> set[T]:
        bucket, key = place
        if key is None:
            return bucket[pattern]
        return bucket[key][pattern]

    def discard(self, pattern: str, item: T) -> None:
        """Remove ``item`` from ``pattern``; forget the glob when nothing is left under it."""
        items = self._exact.get(pattern)
        if items is not None:
            items.discard(item)
            if not items:
                del self._exact[pattern]
                self._cache.clear()
            return
        place = self._place.get(pattern)
        if place is None:
            return
        items = self._items(pattern, place)
        items.discard(item)
        if items:
            return
        bucket, key = place
        if key is None:
            del bucket[pattern]
        else:
            del bucket[key][pattern]
            if not bucket[key]:
                del bucket[key]
        del self._place[pattern]
        del self._globs[pattern]
        self._cache.clear()

    def lookup(self, topic: str, into: set[T]) -> None:
        """Add to ``into`` the items of every glob that matches ``topic``."""
        hit = self._cache.get(topic)
        if hit is None:
            hit = self._find(topic)
            if len(self._cache) >= CACHE_TOPICS:
                self._cache.clear()
            self._cache[topic] = hit
        for items in hit:
            into.update(items)

    def _find(self, topic: str) -> tuple[set[T], ...]:
        """The item sets of the globs that match ``topic``, without the cache."""
        hit = []
        found = self._exact.get(topic)
        if found:
            hit.append(found)
        globs = self._globs
        if self._prefix:
            prefix = self._prefix
            dot = topic.find(".")
            while dot != -1:
                bucket = prefix.get(topic[:dot + 1])
                if bucket:
                    for pattern, items in bucket.items():
                        if globs[pattern](topic):
                            hit.append(items)
                dot = topic.find(".", dot + 1)
        if self._segment:
            segment = self._segment
            for seg in set(topic.split(".")):
                bucket = segment.get(seg)
                if bucket:
                    for pattern, items in bucket.items():
                        if globs[pattern](topic):
                            hit.append(items)
        for pattern, items in self._scan.items():
            if globs[pattern](topic):
                hit.append(items)
        return tuple(hit)

    def patterns(self) -> Iterable[str]:
        """Every glob in the index."""
        yield from self._exact
        yield from self._place

    def stats(self) -> dict[str, int]:
        """How many globs sit in each part of the index."""
        return {
            "exact": len(self._exact),
            "prefix": sum(len(b) for b in self._prefix.values()),
            "segment": sum(len(b) for b in self._segment.values()),
            "scan": len(self._scan),
        }
