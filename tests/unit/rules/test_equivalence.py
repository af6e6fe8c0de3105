"""The indexed matcher gives the reference matcher's answers, before and after changes.

Random users (some with non-ASCII names), rules of every kind with random
filters (disabled ones too), ownership of packages, containers, modules and
flatpaks (one name in several kinds) by users and groups, and messages;
then random sequences of rule and owner changes applied in place to the
index, compared with a reference built from scratch.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.errors import RuleError
from notifier.rules import SEVERITIES, TRACK_KINDS, Matcher, ReferenceMatcher, parse_rule
from notifier.rules import index as index_module

FAST = settings(max_examples=200, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DESTS = ["desktop", "email", "irc", "rss"]
USERS = ["alice", "bob", "carol", "zoë", "Émile", "李雷"]
GROUPS = ["infra", "python-sig", "Ω-team"]
PACKAGES = ["kernel", "python3", "gcc", "ñandú", "firefox"]
#: artifacts of every kind by key, and as rules may spell them
ARTIFACTS = [*PACKAGES, "containers/firefox", "modules/nodejs", "flatpaks/firefox"]
SPELLED = [*ARTIFACTS, "rpms/gcc", "container/firefox", "flatpak/firefox", "modules/kernel"]
OTHER_NAMES = ["firefox", "nodejs", "kernel"]
APPS = ["bodhi", "Koji", "PAGURE", "distgit"]
NAMES = ["a", "b", "Mes paquets", "パッケージ"]
PARTS = ["org", "fedoraproject", "prod", "stg", "bodhi", "update", "comment", "koji", "x"]

users = st.sampled_from(USERS)
packages = st.sampled_from(PACKAGES)
artifacts = st.sampled_from(ARTIFACTS)
topics = st.lists(st.sampled_from(PARTS), min_size=1, max_size=5).map(".".join)
globs = st.one_of(
    topics,
    topics.map(lambda t: t.replace("o", "?", 1)),
    st.lists(st.sampled_from([*PARTS, "*", "?*", "[bk]*", "*o*"]), min_size=1,
             max_size=5).map(".".join),
    st.sampled_from(["*", "*bodhi*", "org*", "*.update.*", "org.fedoraproject.*"]),
)


def some(values: Any, **kw: Any) -> Any:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, **kw)


@st.composite
def rule_dicts(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(TRACK_KINDS))
    track: dict[str, Any] = {"kind": kind}
    if kind == "artifacts-owned" and draw(st.booleans()):
        track["users"] = draw(some(USERS))
    elif kind == "artifacts-group-owned":
        track["groups"] = draw(some(GROUPS))
    elif kind == "artifacts-followed":
        track["packages"] = draw(some(SPELLED))
    elif kind == "users-followed":
        track["users"] = draw(some(USERS))
    elif kind == "topics":
        track["patterns"] = draw(st.lists(globs, min_size=1, max_size=3))
    filters: dict[str, Any] = {}
    if draw(st.booleans()):
        filters["applications"] = draw(st.lists(st.sampled_from(APPS), max_size=2))
    if draw(st.booleans()):
        filters["excluded_applications"] = draw(st.lists(st.sampled_from(APPS), max_size=2))
    if draw(st.booleans()):
        filters["severities"] = draw(some(SEVERITIES, unique=True))
    if draw(st.booleans()):
        filters["my_actions"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        filters["topic"] = draw(globs)
    return {"user": draw(users), "name": draw(st.sampled_from(NAMES)),
            "disabled": draw(st.integers(0, 5)) == 0, "track": track, "filters": filters,
            "destinations": draw(some(DESTS))}


owners = st.one_of(st.tuples(artifacts, st.just("user"), users),
                   st.tuples(artifacts, st.just("group"), st.sampled_from(GROUPS)))

messages = st.fixed_dictionaries({
    "msg_id": st.just("m"),
    "topic": topics,
    "app": st.one_of(st.none(), st.sampled_from([*APPS, "BODHI", "koji", "wiki"])),
    "usernames": st.lists(users, unique=True, max_size=3).map(sorted),
    "agent": st.one_of(st.none(), users),
    "packages": st.lists(packages, unique=True, max_size=3).map(sorted),
    **{kind: st.lists(st.sampled_from(OTHER_NAMES), unique=True, max_size=2).map(sorted)
       for kind in ("containers", "modules", "flatpaks")},
    "groups": st.just([]),
    "severity": st.sampled_from(SEVERITIES),
})


@pytest.fixture(autouse=True, scope="module")
def small_tuples():
    """Keys hold a set from 2 rules on, so these small worlds use sets as well as tuples.

    (The way back from a set to a tuple is covered by test_many_rules_under_one_key.)
    """
    saved = index_module.SMALL
    index_module.SMALL = 1
    yield
    index_module.SMALL = saved


def parse(data: dict[str, Any]):
    return parse_rule(data, destinations=DESTS)


def by_key(dicts: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    out = {}
    for data in dicts:
        rule = parse(data)
        out[rule.key] = rule
    return out


def assert_same(indexed: Matcher, ownership: set, rules: dict, probes: list) -> None:
    reference = ReferenceMatcher(rules.values(), ownership)
    for record in probes:
        assert indexed.match(record, explain=True) == reference.match(record, explain=True)


@FAST
@given(st.lists(rule_dicts(), max_size=25), st.sets(owners, max_size=15),
       st.lists(messages, min_size=1, max_size=8))
def test_indexed_equals_reference(rule_list, ownership, probes):
    rules = by_key(rule_list)
    assert_same(Matcher(rules.values(), ownership), ownership, rules, probes)


operations = st.one_of(
    st.tuples(st.just("add"), rule_dicts()),
    st.tuples(st.just("replace"), rule_dicts()),
    # Removals name an existing rule or owner (by position) or, with -1, a random one.
    st.tuples(st.just("remove"), st.integers(-1, 30), users, st.sampled_from(NAMES)),
    st.tuples(st.just("add_owner"), owners),
    st.tuples(st.just("remove_owner"), st.integers(-1, 30), owners),
)


@FAST
@given(st.lists(rule_dicts(), max_size=15), st.sets(owners, max_size=10),
       st.lists(operations, min_size=1, max_size=25),
       st.lists(messages, min_size=1, max_size=4))
def test_incremental_changes_equal_a_fresh_reference(rule_list, ownership, ops, probes):
    rules = by_key(rule_list)
    ownership = set(ownership)
    indexed = Matcher(rules.values(), ownership)
    for op in ops:
        if op[0] == "add":
            rule = parse(op[1])
            if rule.key in rules:
                with pytest.raises(RuleError):
                    indexed.add_rule(rule)
            else:
                indexed.add_rule(rule)
                rules[rule.key] = rule
        elif op[0] == "replace":
            rule = parse(op[1])
            old = indexed.replace_rule(rule)
            assert old is rules.get(rule.key)
            rules[rule.key] = rule
        elif op[0] == "remove":
            key = (op[2], op[3])
            if op[1] >= 0 and rules:
                key = sorted(rules)[op[1] % len(rules)]
            removed = indexed.remove_rule(*key)
            assert removed is rules.pop(key, None)
        elif op[0] == "add_owner":
            assert indexed.add_owner(*op[1]) == (op[1] not in ownership)
            ownership.add(op[1])
        else:
            owner = op[2]
            if op[1] >= 0 and ownership:
                owner = sorted(ownership)[op[1] % len(ownership)]
            assert indexed.remove_owner(*owner) == (owner in ownership)
            ownership.discard(owner)
        assert_same(indexed, ownership, rules, probes)
    assert len(indexed.index) == len(rules)
    assert sorted(r.key for r in indexed.index) == sorted(rules)
