"""The behaviour every database behind :class:`Store` must have.

``StoreContract`` is subclassed once per database: SQLite in
tests/unit/storage/test_store_sqlite.py, PostgreSQL in
tests/integration/test_storage_postgres.py. A subclass provides two
fixtures: ``store_url``, a database of its own for each test (with or without
a schema), and ``empty_url``, a database without a schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.bus.envelope import message_id
from notifier.errors import InputError, StorageError
from notifier.storage import Store
from notifier.storage import store as store_module
from notifier.storage.migrate import head_revision


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class StoreContract:
    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def store(self, store_url: str, clock: Clock) -> Iterator[Store]:
        s = Store(store_url, clock=clock)
        yield s
        s.close()

    # -- schema ---------------------------------------------------------------

    def test_new_database_is_at_the_newest_revision(self, store: Store) -> None:
        assert store.revision() == head_revision()
        assert head_revision() is not None

    def test_opening_again_leaves_data_alone(self, store: Store, store_url: str) -> None:
        store.import_users([{"name": "alice"}])
        with Store(store_url) as again:
            assert again.get_user("alice") is not None
            again.upgrade()
            assert again.get_user("alice") is not None

    # -- users ------------------------------------------------------------------

    def test_import_creates_users_with_feed_tokens(self, store: Store) -> None:
        result = store.import_users([
            {"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["al"],
             "groups": ["packager"]},
            {"name": "bob"},
        ])
        assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
        alice = store.get_user("alice")
        assert alice is not None
        token = alice.pop("feed_token")
        assert alice == {"name": "alice", "emails": ["alice@example.org"], "ircnicks": ["al"],
                         "groups": ["packager"], "delivery": None}
        # token_urlsafe(32): 32 random bytes, 43 characters
        assert len(token) >= 43
        bob = store.get_user("bob")
        assert bob is not None
        assert bob["emails"] == bob["ircnicks"] == bob["groups"] == []
        assert bob["feed_token"] != token

    def test_reimport_updates_only_given_keys_and_keeps_the_token(self, store: Store) -> None:
        store.import_users([{"name": "alice", "emails": ["a@x"], "ircnicks": ["al"]}])
        before = store.get_user("alice")
        assert before is not None
        result = store.import_users([{"name": "alice", "emails": ["new@x"]},
                                     {"name": "carol"}])
        assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
        after = store.get_user("alice")
        assert after == {**before, "emails": ["new@x"]}
        again = store.import_users([{"name": "alice", "emails": ["new@x"]}])
        assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
        assert store.upsert_users([{"name": "alice", "groups": ["g"]}]) == 1
        assert store.upsert_users([{"name": "alice", "groups": ["g"]}]) == 0

    def test_delivery_settings_are_kept_as_given(self, store: Store) -> None:
        delivery = {"email": {"address": "a@example.org",
                              "digest": {"every": "1h", "max_items": 100}},
                    "irc": {"nick": "al", "digest": None}}
        store.import_users([{"name": "alice", "delivery": delivery}])
        assert store.get_user("alice")["delivery"] == delivery  # type: ignore[index]
        store.import_users([{"name": "alice", "delivery": None}])
        assert store.get_user("alice")["delivery"] is None  # type: ignore[index]

    def test_a_bad_record_imports_nothing(self, store: Store) -> None:
        with pytest.raises(InputError, match=r"users\.json: record 1 \('bob'\): unknown key "
                                             r"'emial' \(did you mean 'emails'\?\)"):
            store.import_users([{"name": "alice"}, {"name": "bob", "emial": ["b@x"]}],
                               "users.json")
        assert store.list_users() == []

    def test_add_list_show_remove(self, store: Store) -> None:
        added = store.add_user({"name": "zed", "emails": ["z@x"]})
        store.add_user({"name": "amy"})
        assert added == store.get_user("zed")
        with pytest.raises(InputError, match="'zed' already exists"):
            store.add_user({"name": "zed"})
        assert [u["name"] for u in store.list_users()] == ["amy", "zed"]
        assert store.get_user_by_feed_token(added["feed_token"]) == added
        assert store.get_user_by_feed_token("nope") is None
        assert store.remove_user("zed") is True
        assert store.remove_user("zed") is False
        assert store.get_user("zed") is None
        assert [u["name"] for u in store.list_users()] == ["amy"]

    def test_unicode_survives(self, store: Store) -> None:
        store.import_users([{"name": "zoë", "emails": ["zoë@exämple.org"],
                             "delivery": {"email": {"address": "日本語@exämple.org"}}}])
        user = store.get_user("zoë")
        assert user is not None
        assert user["emails"] == ["zoë@exämple.org"]
        assert user["delivery"] == {"email": {"address": "日本語@exämple.org"}}

    # -- profile cache -------------------------------------------------------------

    def test_profile_cache(self, store: Store) -> None:
        assert store.cached_profile("alice") is None
        store.cache_profile("alice", {"name": "alice", "emails": ["a@x"]}, 10.0)
        store.cache_profile("ghost", None, 11.0)
        assert store.cached_profile("alice") == ({"name": "alice", "emails": ["a@x"]}, 10.0)
        assert store.cached_profile("ghost") == (None, 11.0)
        store.cache_profile("alice", {"name": "alice", "emails": []}, 20.0)
        assert store.cached_profile("alice") == ({"name": "alice", "emails": []}, 20.0)
        assert store.clear_profile_cache() == 2
        assert store.cached_profile("alice") is None

    # -- ownership -------------------------------------------------------------

    def test_ownership_applies_only_the_delta(self, store: Store) -> None:
        first = store.apply_ownership({
            "requests": {"users": ["alice", "bob"], "groups": ["python-sig"]},
            "kernel": {"users": ["carol"]},
        })
        assert first.added == [("kernel", "user", "carol"), ("requests", "group", "python-sig"),
                               ("requests", "user", "alice"), ("requests", "user", "bob")]
        assert first.removed == []
        same = store.apply_ownership({"requests": {"users": ["bob", "alice"],
                                                   "groups": ["python-sig"]}})
        assert same.added == same.removed == []
        change = store.apply_ownership({"requests": {"users": ["alice", "dave"]}})
        assert change.added == [("requests", "user", "dave")]
        assert change.removed == [("requests", "group", "python-sig"),
                                  ("requests", "user", "bob")]
        # kernel was not in the file, so it kept its owner
        assert list(store.ownership()) == [("kernel", "user", "carol"),
                                           ("requests", "user", "alice"),
                                           ("requests", "user", "dave")]

    def test_ownership_replace_drops_packages_missing_from_the_file(self, store: Store) -> None:
        store.apply_ownership({"a": {"users": ["u1"]}, "b": {"groups": ["g1"]}})
        delta = store.apply_ownership({"a": {"users": ["u1"]}}, replace=True)
        assert delta.added == []
        assert delta.removed == [("b", "group", "g1")]
        assert list(store.ownership()) == [("a", "user", "u1")]

    def test_ownership_empty_entry_and_dry_run(self, store: Store) -> None:
        store.apply_ownership({"a": {"users": ["u1"], "groups": ["g1"]}})
        preview = store.apply_ownership({"a": {}}, dry_run=True)
        assert preview.removed == [("a", "group", "g1"), ("a", "user", "u1")]
        assert len(list(store.ownership())) == 2
        store.apply_ownership({"a": {"users": [], "groups": []}})
        assert list(store.ownership()) == []

    def test_ownership_queries(self, store: Store) -> None:
        store.apply_ownership({"a": {"users": ["u1"]}, "b": {"groups": ["g1"]},
                               "c": {"users": ["u2"], "groups": ["g2"]}})
        assert store.owned_packages("u1") == {"a"}
        assert store.owned_packages("u1", ["g1", "g2"]) == {"a", "b", "c"}
        assert store.owned_packages(None, ["g2"]) == {"c"}
        assert store.owned_packages() == set()
        assert store.package_owners("c") == {"users": ["u2"], "groups": ["g2"]}
        assert store.package_owners("zzz") == {"users": [], "groups": []}

    def test_ownership_rejects_bad_input(self, store: Store) -> None:
        with pytest.raises(InputError, match=r"package 'a': unknown key 'user' "
                                             r"\(did you mean 'users'\?\)"):
            store.apply_ownership({"a": {"user": ["u1"]}})
        with pytest.raises(InputError, match="'groups' must be a list of non-empty strings"):
            store.apply_ownership({"a": {"groups": "g1"}})
        assert list(store.ownership()) == []

    def test_many_owners(self, store: Store) -> None:
        packages = {f"pkg{i:04d}": {"users": [f"u{i % 7}"], "groups": [f"g{i % 3}"]}
                    for i in range(1200)}
        assert len(store.apply_ownership(packages).added) == 2400
        packages["pkg0001"] = {"users": ["new"]}
        delta = store.apply_ownership(packages, replace=True)
        assert delta.added == [("pkg0001", "user", "new")]
        assert delta.removed == [("pkg0001", "group", "g1"), ("pkg0001", "user", "u1")]

    # -- rules ------------------------------------------------------------------

    def test_rules_round_trip(self, store: Store, clock: Clock) -> None:
        rule = {"user": "alice", "name": "my packages", "tracking": {"artifacts-owned": []},
                "filters": {"topic": "*.git.*"}, "destinations": ["email"]}
        assert store.upsert_rules([rule, {"user": "bob", "name": "all", "disabled": True}]) == 2
        assert store.get_rule("alice", "my packages") == {**rule, "disabled": False}
        assert store.get_rule("bob", "all") == {"user": "bob", "name": "all", "disabled": True}
        assert store.get_rule("alice", "nope") is None
        assert store.upsert_rules([rule]) == 0
        changed = {**rule, "filters": {"topic": "*"}}
        assert store.upsert_rules([changed]) == 1
        assert store.get_rule("alice", "my packages") == {**changed, "disabled": False}
        assert [r["name"] for r in store.list_rules()] == ["my packages", "all"]
        assert [r["user"] for r in store.list_rules("bob")] == ["bob"]
        assert store.list_rules("nobody") == []

    def test_rules_disable_and_remove(self, store: Store) -> None:
        store.upsert_rules([{"user": "alice", "name": "r1", "x": [1, 2]}])
        assert store.set_rule_disabled("alice", "r1", True) is True
        assert store.get_rule("alice", "r1") == {"user": "alice", "name": "r1", "x": [1, 2],
                                                 "disabled": True}
        assert store.set_rule_disabled("alice", "r1", False) is True
        assert store.get_rule("alice", "r1")["disabled"] is False  # type: ignore[index]
        assert store.set_rule_disabled("alice", "nope", True) is False
        assert store.remove_rule("alice", "r1") is True
        assert store.remove_rule("alice", "r1") is False
        assert store.list_rules() == []

    def test_rules_need_user_and_name(self, store: Store) -> None:
        with pytest.raises(InputError, match="rule 1: 'name' must be a non-empty string"):
            store.upsert_rules([{"user": "a", "name": "ok"}, {"user": "a"}])
        assert store.list_rules() == []

    # -- history -------------------------------------------------------------------

    def test_store_messages_ignores_duplicates(self, store: Store) -> None:
        batch = [{"topic": "t.a", "msg": {}, "msg_id": "2024-1", "timestamp": 100},
                 {"topic": "t.b", "headers": {}, "id": "uuid-2", "body": {}},
                 {"topic": "t.c", "msg": {"x": 1}},
                 {"topic": "t.c", "msg": {"x": 1}}]
        assert store.store_messages(batch) == 3
        assert store.store_messages(batch) == 0
        assert store.store_messages([*batch, {"topic": "t.d", "msg": {}}]) == 1
        assert store.count_messages() == 4
        assert store.get_message("2024-1") == batch[0]
        assert store.get_message("uuid-2") == batch[1]
        assert store.get_message(message_id({"topic": "t.c", "msg": {"x": 1}})) == batch[2]
        assert store.store_messages([]) == 0

    def test_envelopes_come_back_as_stored(self, store: Store) -> None:
        envelope = {"topic": "t", "z": 1, "a": [1.5, None, True], "msg": {"ü": "☃",
                    "big": 123456789012345678901234567890, "nested": {"b": {}, "a": []}},
                    "msg_id": "m1", "timestamp": 12.25}
        store.store_messages([envelope])
        (back,) = list(store.messages())
        assert back == envelope
        assert list(back) == list(envelope)
        assert list(back["msg"]) == list(envelope["msg"])

    def test_message_times(self, store: Store, clock: Clock) -> None:
        store.store_messages([
            {"topic": "a", "msg_id": "fedmsg", "timestamp": 1_600_000_000},
            {"topic": "b", "id": "amqp", "headers": {"sent-at": "2021-01-01T00:00:00+00:00"}},
            {"topic": "c", "msg_id": "bare", "msg": {}},
        ])
        rows = {row.msg_id: row for row in store.message_rows()}
        assert rows["fedmsg"].timestamp == 1_600_000_000
        assert rows["amqp"].timestamp == 1_609_459_200
        assert rows["bare"].timestamp == clock.now
        assert [row.msg_id for row in store.message_rows()] == ["fedmsg", "amqp", "bare"]

    def test_messages_since_and_pruning(self, store: Store) -> None:
        store.store_messages([{"topic": "t", "msg_id": f"m{i}", "timestamp": 1000 + i}
                              for i in range(10)])
        assert [e["msg_id"] for e in store.messages(since=1007)] == ["m7", "m8", "m9"]
        assert [r.msg_id for r in store.message_rows(since=1002, until=1004)] == ["m2", "m3"]
        assert store.prune_history(5, now=1010) == 5
        assert [e["msg_id"] for e in store.messages()] == ["m5", "m6", "m7", "m8", "m9"]
        assert store.prune_history(100, now=1010) == 0

    def test_prune_uses_the_store_clock(self, store: Store, clock: Clock) -> None:
        store.store_messages([{"topic": "t", "msg_id": "old", "timestamp": clock.now - 3600},
                              {"topic": "t", "msg_id": "new", "timestamp": clock.now - 60}])
        assert store.prune_history(600) == 1
        assert [e["msg_id"] for e in store.messages()] == ["new"]

    @pytest.mark.parametrize(("glob", "expected"), [
        ("org.example.*", ["org.example.git.push", "org.example.a_b", "org.example.a%b",
                           "org.example.Git", "org.example.axb"]),
        ("*.git.*", ["org.example.git.push", "other.git.push.x"]),
        ("org.example.a_b", ["org.example.a_b"]),
        ("org.example.a%b", ["org.example.a%b"]),
        ("org.example.a?b", ["org.example.a_b", "org.example.a%b", "org.example.axb"]),
        ("*.[Gg]it*", ["org.example.git.push", "org.example.Git", "other.git.push.x"]),
        ("*.[!g]it", ["org.example.Git"]),
        ("*.git", []),
        ("org.example.g*", ["org.example.git.push"]),
        ("back\\slash", ["back\\slash"]),
    ])
    def test_topic_globs(self, store: Store, glob: str, expected: list[str]) -> None:
        topics = ["org.example.git.push", "org.example.a_b", "org.example.a%b",
                  "org.example.Git", "other.git.push.x", "org.example.axb", "back\\slash"]
        store.store_messages([{"topic": t, "msg_id": t, "timestamp": i}
                              for i, t in enumerate(topics)])
        found = [e["topic"] for e in store.messages(topic_glob=glob)]
        assert sorted(found) == sorted(expected)
        assert found == [t for t in topics if t in found]  # oldest first

    def test_reading_pages_keeps_the_order(self, store: Store,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(store_module, "_PAGE", 7)
        # Equal timestamps across page boundaries: the id breaks the tie.
        envelopes = [{"topic": "a.b" if i % 2 else "a.c", "msg_id": f"m{i:03d}",
                      "timestamp": 100 + i // 5} for i in range(40)]
        store.store_messages(envelopes)
        assert [e["msg_id"] for e in store.messages()] == [e["msg_id"] for e in envelopes]
        odd = [e["msg_id"] for e in envelopes if e["topic"] == "a.b"]
        assert [e["msg_id"] for e in store.messages(topic_glob="a.[b]")] == odd
        assert [e["msg_id"] for e in store.messages(topic_glob="a.b")] == odd

    def test_store_messages_rejects_non_objects(self, store: Store) -> None:
        with pytest.raises(InputError, match="message 1: must be an object"):
            store.store_messages([{"topic": "t"}, ["not", "an", "object"]])  # type: ignore[list-item]
        assert store.count_messages() == 0

    def test_big_batches(self, store: Store) -> None:
        envelopes = [{"topic": f"t.{i % 5}", "msg": {"i": i}, "timestamp": i}
                     for i in range(12_000)]
        assert store.store_messages(envelopes) == 12_000
        assert store.store_messages(envelopes[5_000:] + [{"topic": "new"}]) == 1
        assert store.count_messages() == 12_001

    # -- change log ------------------------------------------------------------------

    def test_every_change_is_logged_once(self, store: Store) -> None:
        from sqlalchemy import select

        from notifier.storage.schema import changes

        store.import_users([{"name": "alice"}, {"name": "bob"}])
        store.import_users([{"name": "alice"}, {"name": "bob", "groups": ["g"]}])
        store.add_user({"name": "carol"})
        store.remove_user("carol")
        store.remove_user("carol")
        store.apply_ownership({"p": {"users": ["alice"], "groups": ["g"]}})
        store.apply_ownership({"p": {"users": ["bob"], "groups": ["g"]}})
        store.apply_ownership({"p": {"users": ["bob"], "groups": ["g"]}}, dry_run=True)
        store.upsert_rules([{"user": "alice", "name": "r"}])
        store.upsert_rules([{"user": "alice", "name": "r"}])
        store.set_rule_disabled("alice", "r", True)
        store.remove_rule("alice", "r")
        store.remove_rule("alice", "r")
        with store.engine.connect() as conn:
            logged = [tuple(row) for row in conn.execute(
                select(changes.c.kind, changes.c.op, changes.c.key1, changes.c.key2,
                       changes.c.key3).order_by(changes.c.seq))]
        assert logged == [
            ("user", "upsert", "alice", None, None), ("user", "upsert", "bob", None, None),
            ("user", "upsert", "bob", None, None),
            ("user", "upsert", "carol", None, None), ("user", "delete", "carol", None, None),
            ("owner", "add", "p", "group", "g"), ("owner", "add", "p", "user", "alice"),
            ("owner", "remove", "p", "user", "alice"), ("owner", "add", "p", "user", "bob"),
            ("rule", "upsert", "alice", "r", None), ("rule", "upsert", "alice", "r", None),
            ("rule", "delete", "alice", "r", None),
        ]

    # -- errors ------------------------------------------------------------------

    def test_errors_name_the_database_and_suggest_upgrade(self, empty_url: str) -> None:
        with Store(empty_url, create=False) as store:
            assert store.revision() is None
            with pytest.raises(StorageError) as info:
                store.list_users()
        message = str(info.value)
        assert "cannot list users" in message
        assert "notifier db upgrade" in message
        assert message.startswith(store.display_url)

