"""A compact, versioned image of the matcher's rules and owners, read back in one go.

Loading 500,000 rules from the ``rules`` table means decoding as many JSON
documents and validating each one again; the snapshot skips both. It holds
what the index is made of, with every string once:

* a JSON header (orjson): the strings, the distinct string lists (targets,
  destinations), the distinct filters, and the snoozed rules;
* the rules as a flat array of 32-bit numbers, seven per rule (user, name,
  kind, targets, filters, destinations, disabled), which decodes without
  making one Python object per number;
* the owners as an array of three numbers per ``(package, kind, name)``.

The whole is compressed (zlib) and prefixed by a magic word and a format
number; :func:`decode` checks the SHA-256 the caller stored beside it, the
format, every count and every reference, and raises :class:`SnapshotError`
on anything amiss, never returning a half-read index. Only rules that were
valid when the snapshot was made are in it, so they are not checked again.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from ..errors import NotifierError
from .model import DEFAULT_FILTERS, SEVERITIES, TRACK_KINDS, Filters, Rule

#: bump when the layout or the meaning of a field changes; an older snapshot is then rebuilt.
#: 2: followed and owned artifacts are artifact keys (``containers/NAME``, ...), targets
#: written ``rpms/NAME`` or ``container/NAME`` read as the keys they name
FORMAT = 2
MAGIC = b"NRSNAP"
_HEAD = struct.Struct("<6sHII")  # magic, format, header bytes, rule numbers
_FIELDS = 7
_OWNER_KINDS = ("user", "group")


class SnapshotError(NotifierError):
    """A snapshot that cannot be used: corrupt, of another format, or inconsistent."""


def digest(data: bytes) -> str:
    """The SHA-256 of a snapshot's bytes, as stored beside it."""
    return hashlib.sha256(data).hexdigest()


class _Strings:
    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.items: list[Any] = []

    def __call__(self, value: Any) -> int:
        got = self.ids.get(value)
        if got is None:
            got = self.ids[value] = len(self.items)
            self.items.append(value)
        return got


def encode(rules: Iterable[Rule], user_owners: Mapping[str, Iterable[str]],
           group_owners: Mapping[str, Iterable[str]]) -> bytes:
    """The snapshot of these rules and owners, compressed."""
    strings = _Strings()
    lists = _Strings()
    filters = _Strings()
    kinds = {kind: i for i, kind in enumerate(TRACK_KINDS)}
    numbers = array("i")
    snoozed: list[list[float | int]] = []

    def strlist(values: tuple[str, ...]) -> int:
        return lists(tuple(strings(v) for v in values))

    for count, rule in enumerate(rules):
        f = rule.filters
        filter_id = -1 if f is DEFAULT_FILTERS else filters((
            tuple(sorted(strings(a) for a in f.applications)),
            tuple(sorted(strings(a) for a in f.excluded_applications)),
            sum(1 << i for i, s in enumerate(SEVERITIES) if s in f.severities),
            f.my_actions, -1 if f.topic is None else strings(f.topic)))
        numbers.extend((strings(rule.user), strings(rule.name), kinds[rule.kind],
                        strlist(rule.targets), filter_id, strlist(rule.destinations),
                        int(rule.disabled)))
        if rule.snoozed_until is not None:
            snoozed.append([count, rule.snoozed_until])
    owners = array("i")
    for kind, table in ((0, user_owners), (1, group_owners)):
        for package, names in table.items():
            p = strings(package)
            for name in names:
                owners.extend((p, kind, strings(name)))
    header = orjson.dumps({"strings": strings.items, "lists": lists.items,
                           "filters": filters.items, "snoozed": snoozed})
    if sys.byteorder != "little":
        numbers.byteswap()
        owners.byteswap()
    body = _HEAD.pack(MAGIC, FORMAT, len(header), len(numbers)) + header \
        + numbers.tobytes() + owners.tobytes()
    return zlib.compress(body, 1)


def decode(data: bytes, expected_digest: str) -> tuple[list[Rule], Iterator[tuple[str, str, str]]]:
    """The rules and the ``(package, kind, name)`` owners of a snapshot; :class:`SnapshotError`."""
    if digest(data) != expected_digest:
        raise SnapshotError("the snapshot's checksum does not match (corrupt or cut short)")
    try:
        body = zlib.decompress(data)
    except zlib.error as exc:
        raise SnapshotError(f"the snapshot does not decompress: {exc}") from exc
    if len(body) < _HEAD.size:
        raise SnapshotError("the snapshot is cut short")
    magic, version, header_len, count = _HEAD.unpack_from(body)
    if magic != MAGIC:
        raise SnapshotError("not a rules snapshot")
    if version != FORMAT:
        raise SnapshotError(f"snapshot format {version}, this version reads {FORMAT}")
    start = _HEAD.size + header_len
    end = start + 4 * count
    if count % _FIELDS or end > len(body) or (len(body) - end) % 12:
        raise SnapshotError("the snapshot's sizes do not add up")
    try:
        return _decode(body, start, end)
    except (ValueError, TypeError, IndexError, KeyError, orjson.JSONDecodeError) as exc:
        raise SnapshotError(f"the snapshot is inconsistent: {type(exc).__name__}: {exc}") \
            from exc


def _decode(body: bytes, start: int, end: int
            ) -> tuple[list[Rule], Iterator[tuple[str, str, str]]]:
    header = orjson.loads(memoryview(body)[_HEAD.size:start])
    intern = sys.intern
    strings = [intern(s) for s in header["strings"]]
    if not all(type(s) is str for s in strings):
        raise TypeError("a string that is not one")
    lists = [tuple([strings[i] for i in ids]) for ids in header["lists"]]
    filters = [_filters(strings, lists, raw) for raw in header["filters"]]
    view = memoryview(body)
    numbers = array("i")
    numbers.frombytes(view[start:end])
    owners = array("i")
    owners.frombytes(view[end:])
    view.release()
    if sys.byteorder != "little":
        numbers.byteswap()
        owners.byteswap()
    if len(numbers) and min(numbers) < -1:
        raise ValueError("a negative reference")
    kinds = TRACK_KINDS
    new = Rule
    default = DEFAULT_FILTERS
    it = iter(numbers)
    rules = [new(strings[u], strings[n], kinds[k], lists[t],
                 default if f == -1 else filters[f], lists[d], bool(x))
             for u, n, k, t, f, d, x in zip(it, it, it, it, it, it, it, strict=True)]
    for index, until in header["snoozed"]:
        if type(until) not in (int, float):
            raise TypeError("a snooze time that is not a number")
        rule = rules[index]
        rules[index] = new(rule.user, rule.name, rule.kind, rule.targets, rule.filters,
                           rule.destinations, rule.disabled, float(until))
    if len(owners) and min(owners) < 0:
        raise ValueError("a negative owner reference")
    triples = [(strings[p], _OWNER_KINDS[k], strings[n])
               for p, k, n in zip(*(iter(owners),) * 3, strict=True)]
    for rule in rules:
        if not rule.user or not rule.name or not rule.destinations:
            raise ValueError(f"rule {rule.name!r} of {rule.user!r} is incomplete")
    return rules, iter(triples)


def _filters(strings: list[str], lists: list[tuple[str, ...]], raw: list[Any]) -> Filters:
    apps, excluded, mask, my_actions, topic = raw
    if type(my_actions) is not bool or not 0 < mask < 1 << len(SEVERITIES):
        raise ValueError("bad filters")
    made = Filters(frozenset(strings[i] for i in apps), frozenset(strings[i] for i in excluded),
                   frozenset(s for i, s in enumerate(SEVERITIES) if mask >> i & 1), my_actions,
                   None if topic == -1 else strings[topic])
    return DEFAULT_FILTERS if made == DEFAULT_FILTERS else made
