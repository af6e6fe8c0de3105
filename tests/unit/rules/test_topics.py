"""The topic glob index finds exactly what fnmatchcase finds, wherever a glob is filed."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.rules.topics import TopicIndex, literal_segments

FAST = settings(max_examples=200, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

TOPIC_TOKENS = ["org", "a", "b", "ab", "bodhi", ".", ".", "é"]
GLOB_TOKENS = TOPIC_TOKENS + ["*", "?", "[ab]", "[!b]", "[.]", "[a.b]", "[.ab.]", "]", "[", "*."]

topics = st.lists(st.sampled_from(TOPIC_TOKENS), min_size=1, max_size=8).map("".join)
globs = st.lists(st.sampled_from(GLOB_TOKENS), min_size=1, max_size=8).map("".join)


def expected(patterns: dict[str, set[int]], topic: str) -> set[int]:
    return {item for p, items in patterns.items() if fnmatchcase(topic, p) for item in items}


def found(index: TopicIndex, topic: str) -> set[int]:
    into: set[int] = set()
    index.lookup(topic, into)
    return into


def test_each_kind_of_glob_lands_in_its_place():
    index: TopicIndex[int] = TopicIndex()
    for i, p in enumerate(["org.fedoraproject.prod.bodhi.update.comment",
                           "org.fedoraproject.prod.bodhi.*",
                           "org.fedoraproject.*.copr.build.end",
                           "*.bodhi.update.comment",
                           "*bodhi*", "org*"]):
        index.add(p, i)
    assert index.stats() == {"exact": 1, "prefix": 2, "segment": 1, "scan": 2}
    assert found(index, "org.fedoraproject.prod.bodhi.update.comment") == {0, 1, 3, 4, 5}
    assert found(index, "org.fedoraproject.stg.copr.build.end") == {2, 5}
    assert found(index, "com.example.bodhi") == {4}
    assert len(index) == 6


def test_literal_segments_stop_at_a_character_class():
    assert literal_segments("*.bodhi.update.*") == ["bodhi", "update"]
    assert literal_segments("*.a.b[.]c.d") == ["a"]
    assert literal_segments("[a.b.c]") == []
    assert literal_segments("?x.y") == ["y"]


def test_a_segment_glob_is_filed_under_its_least_used_segment():
    index: TopicIndex[int] = TopicIndex()
    index.add("*.bodhi.update", 1)   # tie: the last segment, "update"
    index.add("*.bodhi.update.x", 2)  # "update" is used, "x" is not: "x"
    index.add("*.bodhi.comment", 3)
    assert sorted(index._segment) == ["comment", "update", "x"]
    assert found(index, "a.bodhi.update.x") == {2}
    assert found(index, "a.bodhi.update") == {1}


def test_cache_follows_changes():
    index: TopicIndex[int] = TopicIndex()
    index.add("a.*", 1)
    assert found(index, "a.b") == {1}
    index.add("a.*", 2)              # same glob: the cached set grows in place
    assert found(index, "a.b") == {1, 2}
    index.add("*.b", 3)              # a new glob: the cache is cleared
    assert found(index, "a.b") == {1, 2, 3}
    index.discard("a.*", 1)
    index.discard("a.*", 2)          # the glob goes away
    assert found(index, "a.b") == {3}
    index.add("a.*", 4)              # and comes back with a new set
    assert found(index, "a.b") == {3, 4}
    index.discard("*.b", 3)
    index.discard("a.*", 4)
    index.discard("nothing", 5)
    assert found(index, "a.b") == set()
    assert len(index) == 0
    assert index.stats() == {"exact": 0, "prefix": 0, "segment": 0, "scan": 0}


@FAST
@given(st.lists(st.tuples(globs, st.integers(0, 5)), max_size=25),
       st.lists(topics, min_size=1, max_size=10))
def test_lookup_agrees_with_fnmatchcase(entries, probes):
    index: TopicIndex[int] = TopicIndex()
    patterns: dict[str, set[int]] = {}
    for pattern, item in entries:
        index.add(pattern, item)
        patterns.setdefault(pattern, set()).add(item)
    # Globs made from the probes themselves, so that some match.
    for i, topic in enumerate(probes):
        for pattern in (topic, "*" + topic[1:], topic[:-1] + "?", topic.replace("a", "*")):
            index.add(pattern, 100 + i)
            patterns.setdefault(pattern, set()).add(100 + i)
    for topic in probes:
        assert found(index, topic) == expected(patterns, topic)
        assert found(index, topic) == expected(patterns, topic)  # again, from the cache


@FAST
@given(st.lists(st.tuples(st.booleans(), globs, st.integers(0, 3)), max_size=40),
       st.lists(topics, min_size=1, max_size=6))
def test_lookup_agrees_after_adds_and_removals(operations, probes):
    index: TopicIndex[int] = TopicIndex()
    patterns: dict[str, set[int]] = {}
    for add, pattern, item in operations:
        for topic in probes:  # fill the cache between changes
            found(index, topic)
        if add:
            index.add(pattern, item)
            patterns.setdefault(pattern, set()).add(item)
        else:
            index.discard(pattern, item)
            patterns.get(pattern, set()).discard(item)
    for topic in probes:
        assert found(index, topic) == expected(patterns, topic)
    assert len(index) == len([p for p, items in patterns.items() if items])
