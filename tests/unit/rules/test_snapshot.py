"""The rules snapshot: what it holds comes back the same, and anything amiss is refused."""

from __future__ import annotations

import zlib

import pytest

from notifier.rules import Matcher, parse_rule
from notifier.rules.model import DEFAULT_FILTERS
from notifier.rules.snapshot import FORMAT, MAGIC, SnapshotError, decode, digest, encode

DESTS = ["email", "irc", "rss"]

DOCS = [
    {"user": "alice", "name": "Mine", "track": {"kind": "artifacts-owned"},
     "destinations": ["email"]},
    {"user": "alice", "name": "Theirs", "track": {"kind": "artifacts-owned",
                                                  "users": ["bob", "carol"]},
     "destinations": ["email", "irc"], "snoozed_until": 4102444800.5},
    {"user": "bob", "name": "Grp", "track": {"kind": "artifacts-group-owned",
                                             "groups": ["kernel-sig"]},
     "filters": {"applications": ["Koji", "bodhi"], "severities": ["warning", "error"],
                 "my_actions": True, "topic": "*.buildsys.*"},
     "destinations": ["rss"]},
    {"user": "bøb", "name": "Follows ✓", "track": {"kind": "artifacts-followed",
                                                   "packages": ["kernel", "glibc"]},
     "filters": {"excluded_applications": ["copr"]}, "destinations": ["irc"]},
    {"user": "carol", "name": "Me", "track": {"kind": "related-events"},
     "destinations": ["email"], "disabled": True},
    {"user": "carol", "name": "People", "track": {"kind": "users-followed", "users": ["dan"]},
     "filters": {"severities": ["debug", "info", "warning", "error"]},
     "destinations": ["email"]},
    {"user": "dan", "name": "Topics", "track": {"kind": "topics",
                                                "patterns": ["org.fedoraproject.*", "*.bodhi.*"]},
     "destinations": ["email", "rss"]},
]
OWNERS = {"kernel": {"alice", "bob"}, "glibc": {"carol"}}
GROUPS = {"kernel": {"kernel-sig"}}


def rules():
    return [parse_rule(d, destinations=DESTS) for d in DOCS]


def snapshot_bytes() -> bytes:
    return encode(rules(), OWNERS, GROUPS)


def test_every_field_comes_back_the_same():
    data = snapshot_bytes()
    got, owners = decode(data, digest(data))
    assert [r.to_dict() for r in got] == [r.to_dict() for r in rules()]
    assert sorted(owners) == sorted([("kernel", "user", "alice"), ("kernel", "user", "bob"),
                                     ("glibc", "user", "carol"),
                                     ("kernel", "group", "kernel-sig")])
    # The matcher tells default filters by identity: they must come back as the constant.
    assert got[0].filters is DEFAULT_FILTERS and got[2].filters is not DEFAULT_FILTERS
    # Equal lists are shared, not repeated.
    assert got[0].destinations is got[4].destinations


def test_a_matcher_from_the_snapshot_matches_as_the_original():
    original = Matcher(rules(), [(p, "user", u) for p, us in OWNERS.items() for u in us]
                       + [(p, "group", g) for p, gs in GROUPS.items() for g in gs])
    data = encode(*original.export())
    copy = Matcher(*decode(data, digest(data)))
    records = [
        {"topic": "org.fedoraproject.prod.buildsys.build.state.change", "app": "koji",
         "packages": ["kernel"], "usernames": ["carol"], "agent": "dan", "severity": "error"},
        {"topic": "org.fedoraproject.prod.bodhi.update.comment", "app": "bodhi",
         "packages": ["glibc"], "usernames": [], "agent": "bob", "severity": "info"},
        {"topic": "x.y", "app": "copr", "packages": ["kernel", "glibc"], "usernames": ["carol"],
         "agent": None, "severity": "info"},
    ]
    for record in records:
        assert copy.match(record, explain=True) == original.match(record, explain=True)
        assert original.match(record)  # the records do reach someone


def test_an_empty_matcher_makes_an_empty_snapshot():
    data = encode([], {}, {})
    got, owners = decode(data, digest(data))
    assert got == [] and list(owners) == []


def test_a_changed_byte_is_refused_by_the_checksum():
    data = bytearray(snapshot_bytes())
    data[len(data) // 2] ^= 1
    with pytest.raises(SnapshotError, match="checksum"):
        decode(bytes(data), digest(snapshot_bytes()))


def _repacked(body: bytes) -> bytes:
    return zlib.compress(body)


def test_another_format_is_refused():
    body = bytearray(zlib.decompress(snapshot_bytes()))
    assert body.startswith(MAGIC)
    body[len(MAGIC):len(MAGIC) + 2] = (FORMAT + 1).to_bytes(2, "little")
    data = _repacked(bytes(body))
    with pytest.raises(SnapshotError, match=f"format {FORMAT + 1}"):
        decode(data, digest(data))


@pytest.mark.parametrize("damage", ["cut", "magic", "garbage", "reference"])
def test_inconsistent_contents_are_refused_even_with_a_matching_checksum(damage):
    body = zlib.decompress(snapshot_bytes())
    if damage == "cut":
        data = _repacked(body[:-5])
    elif damage == "magic":
        data = _repacked(b"XXXXXX" + body[6:])
    elif damage == "garbage":
        data = b"not zlib at all"
    else:  # a rule's user number far beyond the strings
        numbers_at = len(body) - 4 * 3 * 4 - 4 * 7 * len(DOCS)
        data = _repacked(body[:numbers_at] + (10**6).to_bytes(4, "little")
                         + body[numbers_at + 4:])
    with pytest.raises(SnapshotError):
        decode(data, digest(data))


def test_loading_many_rules_at_once_files_them_as_adding_them_one_by_one():
    import random

    from notifier.errors import RuleError
    from notifier.rules.index import SMALL, RuleIndex

    many = [parse_rule({**DOCS[0], "name": f"Mine {i}"}, destinations=DESTS)
            for i in range(SMALL * 3)]  # one user with more rules than a tuple holds
    everything = rules() + many
    random.Random(3).shuffle(everything)  # users interleaved
    one_by_one, at_once = RuleIndex(), RuleIndex()
    for rule in everything:
        one_by_one.add(rule)
    at_once.load(everything[:10])
    at_once.load(everything[10:])  # into an index that is not empty
    assert len(at_once) == len(one_by_one) == len(everything)
    assert {id(r) for r in at_once} == {id(r) for r in one_by_one}
    assert at_once.stats() == one_by_one.stats()
    record = {"topic": "org.fedoraproject.prod.bodhi.update.comment", "packages": ["kernel"],
              "usernames": ["carol"], "agent": "dan"}
    at_once.add_owner("kernel", "user", "alice")
    one_by_one.add_owner("kernel", "user", "alice")
    assert at_once.candidates(record) == one_by_one.candidates(record)
    assert len(at_once.candidates(record)) > SMALL
    # A user with many rules shrinks back as rules go, and each is still found by name.
    for i in range(SMALL * 3 - 1):
        assert at_once.remove("alice", f"Mine {i}") is not None
        assert at_once.get("alice", f"Mine {i + 1}") is not None
    assert sorted(r.name for r in at_once.rules_of("alice")) == [
        "Mine", f"Mine {SMALL * 3 - 1}", "Theirs"]
    with pytest.raises(RuleError, match="already has a rule named 'Mine'"):
        at_once.load([parse_rule(DOCS[0], destinations=DESTS)])
    with pytest.raises(RuleError, match="already has a rule named 'Me'"):
        RuleIndex().load([parse_rule(d, destinations=DESTS) for d in (DOCS[4], DOCS[0],
                                                                       DOCS[4])])
