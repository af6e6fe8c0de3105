"""The history's index: which rows a described message gets, and the indexed questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifier.notification import Notification
from notifier.storage import Store, termquery, terms
from notifier.storage.history_index import HistoryIndex
from notifier.storage.outbox import Outbox


def described(**fields: Any) -> dict[str, Any]:
    record = {"msg_id": "m", "topic": "org.example.prod.koji.build", "app": "Koji",
              "summary": "s", "link": None, "icon": None, "usernames": ["alice", "bob"],
              "agent": "alice", "packages": ["kernel"], "groups": ["infra"],
              "severity": "warning"}
    record.update(fields)
    return record


def test_a_message_gets_its_facts_terms_and_vocabulary() -> None:
    rows = terms.index_rows([(7, 100.0, described())])
    assert rows.facts == [(7, 100.0, "org.example.prod.koji.build", "koji", "warning",
                           "alice")]
    assert sorted((t[0], t[1]) for t in rows.terms) == [
        ("agent", "alice"), ("app", "koji"), ("group", "infra"), ("package", "kernel"),
        ("severity", "warning"), ("topic", "org.example.prod.koji.build"),
        ("user", "alice"), ("user", "bob")]
    assert all(t[2:] == (100.0, 7) for t in rows.terms)
    assert rows.vocabulary[("app", "koji")] == 100.0


def test_missing_fields_and_overlong_values() -> None:
    long = "p" * (terms.MAX_VALUE + 1)
    rows = terms.index_rows([(1, 5.0, described(app=None, agent=None, severity=None,
                                                usernames=[], groups=[],
                                                packages=[long, "gcc"]))])
    assert rows.facts[0][3:] == ("", "info", None)
    assert sorted((t[0], t[1]) for t in rows.terms) == [
        ("package", "gcc"), ("severity", "info"), ("topic", "org.example.prod.koji.build")]
    assert ("app", "") not in rows.vocabulary


def test_vocabulary_keeps_the_newest_time() -> None:
    rows = terms.index_rows([(1, 50.0, described()), (2, 90.0, described()),
                             (3, 70.0, described())])
    assert rows.vocabulary[("package", "kernel")] == 90.0


def test_recent_terms_are_written_again_only_when_an_hour_newer() -> None:
    recent = terms.RecentTerms()
    first = {("package", "kernel"): 1000.0, ("user", "bob"): 1000.0}
    assert recent.wanted(first) == first
    recent.remember(first)
    later = {("package", "kernel"): 1000.0 + terms.VOCABULARY_SLACK,
             ("user", "bob"): 1001.0 + terms.VOCABULARY_SLACK, ("group", "x"): 5.0}
    assert recent.wanted(later) == {("user", "bob"): 1001.0 + terms.VOCABULARY_SLACK,
                                    ("group", "x"): 5.0}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as opened:
        yield opened


def fill(store: Store, records: list[tuple[int, float, dict[str, Any]]]) -> None:
    envelopes = [{"topic": r["topic"], "msg_id": f"m{i}", "timestamp": t, "msg": {}}
                 for i, t, r in records]
    by_id = {f"m{i}": r for i, _, r in records}
    assert store.store_messages(envelopes, lambda e: by_id[e["msg_id"]]) == len(records)


def ids(store: Store, query: termquery.TermQuery, limit: int = 100) -> list[int]:
    with store._transaction("q", write=False) as conn:
        return [i for i, _ in termquery.newest_matches(conn, query, limit)]


@pytest.mark.parametrize("dense", [termquery.DENSE, 1], ids=["gathered", "walked"])
def test_candidate_queries_apply_the_track_and_the_filters(
        store: Store, monkeypatch: pytest.MonkeyPatch, dense: int) -> None:
    monkeypatch.setattr(termquery, "DENSE", dense)
    fill(store, [
        (1, 10.0, described()),
        (2, 20.0, described(app="bodhi", packages=["kernel", "gcc"])),
        (3, 30.0, described(agent="carol", severity="debug")),
        (4, 40.0, described(packages=["gcc"], topic="org.example.prod.koji.tag")),
        (5, 50.0, described(agent=None)),
    ])
    q = termquery.TermQuery(kind="package", values=frozenset({"kernel"}), since=0.0)
    assert ids(store, q) == [5, 3, 2, 1]  # messages.id follow the insert order
    assert ids(store, q, limit=2) == [5, 3]
    with store._transaction("q", write=False) as conn:
        assert termquery.newest_matches(conn, q, 2, before=(30.0, 3)) == [(2, 20.0), (1, 10.0)]
        assert termquery.count_matches(conn, q, 100) == 4
        assert termquery.count_matches(conn, q, 3) == 3
    both = termquery.TermQuery(kind="package", values=frozenset({"kernel", "gcc"}), since=15.0)
    assert ids(store, both) == [5, 4, 3, 2]  # message 2 once, though it has both
    assert ids(store, termquery.TermQuery(kind="package", values=frozenset({"kernel"}),
                                      since=0.0, until=30.0)) == [2, 1]
    filtered = [
        ({"severities": frozenset({"info", "warning"})}, [5, 2, 1]),
        ({"applications": frozenset({"bodhi"})}, [2]),
        ({"excluded_applications": frozenset({"bodhi"})}, [5, 3, 1]),
        ({"not_agent": "alice"}, [5, 3]),
        ({"topics": frozenset({"org.example.prod.koji.build"})}, [5, 3, 2, 1]),
        ({"topics": frozenset()}, []),
    ]
    for extra, want in filtered:
        assert ids(store, termquery.TermQuery(kind="package", values=frozenset({"kernel"}),
                                          since=0.0, **extra)) == want, extra
    assert ids(store, termquery.TermQuery(kind="agent", values=frozenset({"carol"}),
                                      since=0.0)) == [3]
    assert ids(store, termquery.TermQuery(kind="user", values=frozenset({"bob"}),
                                      since=0.0)) == [5, 4, 3, 2, 1]
    assert ids(store, termquery.TermQuery(kind="topic", values=frozenset(
        {"org.example.prod.koji.tag"}), since=0.0)) == [4]
    assert ids(store, termquery.TermQuery(kind="package", values=None, since=35.0)) == [5, 4]


def test_lookups_search_the_vocabulary_and_the_owners(store: Store) -> None:
    fill(store, [(1, 10.0, described(packages=["kernel", "kernel-tools", "gcc"])),
                 (2, 20.0, described(app="Bodhi", usernames=["kate"], agent="karl",
                                     groups=["kde-sig"]))])
    store.apply_ownership({"kexec": {"users": ["kim"], "groups": ["kernel-team"]}})
    store.import_users([{"name": "kelly"}])
    index = HistoryIndex(store)
    assert index.applications() == ["bodhi", "koji"]
    assert index.packages("ke") == ["kernel", "kernel-tools", "kexec"]
    assert index.packages("ke", limit=1) == ["kernel"]
    assert index.packages("kernel-") == ["kernel-tools"]
    assert index.packages("%") == [] and index.packages("K") == []
    assert index.users("k") == ["karl", "kate", "kelly", "kim"]
    assert index.groups("k") == ["kde-sig", "kernel-team"]
    assert index.groups("") == ["infra", "kde-sig", "kernel-team"]


def test_the_pipelines_record_indexes_what_it_stores(store: Store) -> None:
    outbox = Outbox(store, clock=lambda: 1000.0)
    envelopes = [{"topic": "org.example.prod.koji.build", "msg_id": f"o{i}",
                  "timestamp": 900.0 + i, "msg": {}} for i in range(3)]
    note = Notification(user="alice", destination="email", address="a@example.org",
                        msg_id="o0", topic="org.example.prod.koji.build", app="koji",
                        content={"subject": "s", "text": "t"})
    outbox.record_and_claim(envelopes, [(note, "pending")],
                            described=[described(msg_id="o0"), None,
                                       described(msg_id="o2", packages=["gcc"])])
    q = termquery.TermQuery(kind="topic", values=frozenset({"org.example.prod.koji.build"}),
                        since=0.0)
    with store._transaction("q", write=False) as conn:
        found = termquery.newest_matches(conn, q, 10)
        assert [t for _, t in found] == [902.0, 900.0]
    assert HistoryIndex(store).unindexed() == 1


@pytest.mark.parametrize("budget", [1, 2, 3, 100])
def test_a_walk_that_finds_too_few_in_its_budget_lets_the_index_answer(
        store: Store, budget: int) -> None:
    # The matches are the oldest messages: a walk of the newest ones finds none of them.
    fill(store, [
        (1, 10.0, described(app="bodhi")),
        (2, 20.0, described(app="bodhi")),
        (3, 30.0, described()),
        (4, 40.0, described()),
        (5, 50.0, described()),
    ])
    q = termquery.TermQuery(kind="package", values=frozenset({"kernel"}), since=0.0,
                        applications=frozenset({"bodhi"}))
    walk = termquery.Plan(termquery._walk(q), gather=termquery._gather(q, ("app", ["bodhi"])),
                      walk_budget=budget)
    with store._transaction("q", write=False) as conn:
        assert termquery.newest_matches(conn, q, 10, planned=walk) == [(2, 20.0), (1, 10.0)]
        assert termquery.newest_matches(conn, q, 1, planned=walk) == [(2, 20.0)]
        assert termquery.count_matches(conn, q, 10, walk) == 2
        assert termquery.newest_matches(conn, q, 5, before=(20.0, 2), planned=walk) == [(1, 10.0)]


def test_artifacts_of_every_kind_are_package_terms_by_key(store: Store) -> None:
    rows = terms.index_rows([(1, 10.0, described(packages=["firefox"], containers=["firefox"],
                                                 modules=["nodejs"],
                                                 flatpaks=["org.gnome.Maps"]))])
    assert sorted(t[1] for t in rows.terms if t[0] == "package") == [
        "containers/firefox", "firefox", "flatpaks/org.gnome.Maps", "modules/nodejs"]
    fill(store, [(1, 10.0, described(packages=["firefox"])),
                 (2, 20.0, described(packages=[], containers=["firefox"])),
                 (3, 30.0, described(packages=[], modules=["nodejs"], flatpaks=["firefox"]))])
    store.apply_ownership({"containers/firefox": {"users": ["bob"]},
                           "flatpaks/firefox": {"groups": ["desktop-sig"]},
                           "modules/nodejs": {"users": ["bob"]}})
    assert ids(store, termquery.TermQuery(kind="package", values=frozenset({"firefox"}),
                                          since=0.0)) == [1]
    assert ids(store, termquery.TermQuery(kind="package", values=None, since=0.0,
                                          owned_by=("user", ("bob",)))) == [3, 2]
    assert ids(store, termquery.TermQuery(kind="package", values=None, since=0.0,
                                          owned_by=("group", ("desktop-sig",)))) == [3]
    index = HistoryIndex(store)
    assert index.packages("containers/") == ["containers/firefox"]
    assert index.packages("f") == ["firefox", "flatpaks/firefox"]
