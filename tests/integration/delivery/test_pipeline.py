"""The pipeline on a real database: one message's failure, at any stage, costs only it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from notifier.config import Config, config_from_dict
from notifier.delivery.pipeline import Pipeline
from notifier.errors import StorageError, StorageUnavailableError
from notifier.meta import Describer
from notifier.render import Renderer
from notifier.rules.matcher import Matcher
from notifier.storage import Store
from notifier.storage.feeds import FeedStore
from notifier.storage.outbox import Outbox
from notifier.storage.schema import users

pytestmark = pytest.mark.integration

TOPIC = "org.fedoraproject.dev.git.repo.update"
RULE = {"name": "git", "track": {"kind": "topics", "patterns": ["*.git.*"]}}


def envelope(n: int | str, **fields: Any) -> dict[str, Any]:
    return {"topic": TOPIC, "msg": {"log": f"commit {n}"}, "msg_id": f"2026-{n}",
            "timestamp": 1_700_000_000, "i": 1, "username": "tester", **fields}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_from_dict({"meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False},
                             "email": {"maildir": str(tmp_path / "Maildir")}},
                            str(tmp_path / "notifier.toml"))


def raw_user(store: Store, name: str, **fields: Any) -> None:
    """A record as stored, unchecked (an older version, a hand edit)."""
    row = {"emails": [f"{name}@example.org"], "ircnicks": [name], "groups": [],
           "delivery": None, **fields}
    with store.engine.begin() as conn:
        conn.execute(insert(users).values(name=name, feed_token=f"t-{name}", created_at=0,
                                          updated_at=0, **row))


def make_pipeline(config: Config, store: Store, *,
                  delivered: tuple[str, ...] | None = None) -> Pipeline:
    matcher = Matcher.from_store(store)
    return Pipeline(config, Outbox(store), Describer(config, schemas={}), matcher,
                    Renderer(config, secret=b"s" * 32), store.get_user, delivered=delivered)


@pytest.fixture
def world(config: Config, store: Store) -> Iterator[tuple[Pipeline, Store]]:
    store.import_users([{"name": "alice", "emails": ["alice@example.org"],
                         "ircnicks": ["alice"]}])
    store.upsert_rules([{**RULE, "user": "alice", "destinations": ["email", "rss"]}])
    yield make_pipeline(config, store), store


def recorded(store: Store) -> list[str]:
    return sorted(row.msg_id for row in Outbox(store).rows())


def stored_messages(store: Store) -> list[str]:
    return sorted(m.msg_id for m in store.message_rows())


@pytest.mark.parametrize("stage", ["describe", "match", "render"])
def test_a_message_failing_at_a_stage_is_rejected_alone(
        world: tuple[Pipeline, Store], stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, store = world
    target = {"describe": pipeline.describer, "match": pipeline.matcher,
              "render": pipeline.renderer}[stage]
    method = {"describe": "describe", "match": "match", "render": "render"}[stage]
    original = getattr(target, method)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if "commit 2" in repr(args):
            raise KeyError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(target, method, failing)
    batch = [envelope(n) for n in range(5)]
    result = pipeline.process(batch)
    assert [(r.index, r.reason) for r in result.rejected] == [(2, stage)]
    assert "KeyError: 'boom'" in result.rejected[0].detail
    assert isinstance(result.rejected[0].error, KeyError)  # its traceback gets logged
    assert stored_messages(store) == ["2026-0", "2026-1", "2026-3", "2026-4"]
    assert recorded(store) == sorted(f"2026-{n}" for n in (0, 1, 3, 4) for _ in range(2))
    assert result.new_messages == 4 and result.notifications == 8


def test_a_render_failing_for_one_recipient_skips_only_them(
        config: Config, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.import_users([{"name": n, "emails": [f"{n}@example.org"]} for n in ("alice", "bob")])
    store.upsert_rules([{**RULE, "user": n, "destinations": ["email"]} for n in ("alice", "bob")])
    pipeline = make_pipeline(config, store)
    original = pipeline.renderer.render

    def failing(destination: str, described: Any, envelope: Any, user: Any, *a: Any,
                **kw: Any) -> Any:
        if user["name"] == "bob":
            raise TypeError("bob's record")
        return original(destination, described, envelope, user, *a, **kw)

    monkeypatch.setattr(pipeline.renderer, "render", failing)
    result = pipeline.process([envelope(1), envelope(2)])
    assert result.rejected == []
    assert result.skipped == {"render-failed": 2}
    assert {(r.user, r.msg_id) for r in Outbox(store).rows()} == \
        {("alice", "2026-1"), ("alice", "2026-2")}


def test_the_database_refusing_one_message_rejects_it_alone(
        world: tuple[Pipeline, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, store = world
    outbox = pipeline.outbox
    original = outbox.record_and_claim
    calls: list[int] = []

    def refusing(envelopes: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(envelopes))
        if any(e["msg_id"] in ("2026-5", "2026-11") for e in envelopes):
            raise StorageError("value refused")
        return original(envelopes, *args, **kwargs)

    monkeypatch.setattr(outbox, "record_and_claim", refusing)
    result = pipeline.process([envelope(n) for n in range(16)], {"email": 3})
    assert [(r.index, r.reason, r.detail) for r in result.rejected] == \
        [(5, "record", "value refused"), (11, "record", "value refused")]
    assert stored_messages(store) == sorted(f"2026-{n}" for n in range(16) if n not in (5, 11))
    assert result.new_messages == 14 and result.notifications == 28
    assert len(calls) <= 1 + 2 * 2 * 4  # halving, not one by one
    assert len(result.claimed) == 3  # the room for the batch, not for each part
    assert result.per_destination == {"email": 14, "rss": 14}


def test_data_the_database_cannot_hold_is_found_and_rejected(
        world: tuple[Pipeline, Store]) -> None:
    pipeline, store = world
    # Never past the checks at the boundary; here the database itself refuses it.
    bad = envelope("bad", msg={"log": "lone \ud800 surrogate"})
    result = pipeline.process([envelope(1), bad, envelope(2)])
    assert [(r.index, r.reason) for r in result.rejected] == [(1, "record")]
    assert stored_messages(store) == ["2026-1", "2026-2"]


def test_an_unusable_database_rejects_nothing(world: tuple[Pipeline, Store]) -> None:
    pipeline, store = world
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages RENAME TO messages_away"))
    try:
        with pytest.raises(StorageUnavailableError):
            pipeline.process([envelope(1), envelope(2)])
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE messages_away RENAME TO messages"))
    result = pipeline.process([envelope(1), envelope(2)])
    assert result.rejected == [] and stored_messages(store) == ["2026-1", "2026-2"]


def test_bad_records_at_rest_cost_their_user_only(
        config: Config, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]}])
    raw_user(store, "mallory", delivery={"email": "a@b"})
    raw_user(store, "trudy", emails="trudy@example.org", delivery="x")
    raw_user(store, "oscar", delivery={"email": {"digest": {"every": "1 hour",
                                                            "max_items": 0}}})
    raw_user(store, "peggy", delivery={"email": {"digest": {"every": "1h",
                                                            "max_items": "many"}}})
    names = ("alice", "mallory", "trudy", "oscar", "peggy")
    store.upsert_rules([{**RULE, "user": n, "destinations": ["email", "rss"]} for n in names])
    pipeline = make_pipeline(config, store)
    with caplog.at_level(logging.WARNING):
        for batch in range(3):
            result = pipeline.process([envelope(f"{batch}-{n}") for n in range(4)])
            assert result.rejected == []
    rows = Outbox(store).rows()
    by_user = {n: {(r.destination, r.state) for r in rows if r.user == n} for n in names}
    assert by_user["alice"] == {("email", "pending"), ("rss", "sent")}
    assert by_user["mallory"] == {("email", "pending"), ("rss", "sent")}
    assert {r.notification.address for r in rows if r.user == "mallory"} == \
        {"mallory@example.org", "mallory"}
    assert by_user["trudy"] == {("rss", "sent")}  # her emails are not a list
    # The feed's notifications are delivered as they are recorded: 12 items each.
    feeds = FeedStore(store.engine, 100)
    assert all(len(feeds.items(n)) == 12 for n in names)
    assert by_user["oscar"] == {("email", "pending"), ("rss", "sent")}  # not held
    assert by_user["peggy"] == {("email", "held"), ("rss", "sent")}  # held, 100 items
    assert sum(1 for r in rows if r.user == "alice") == 24
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("notifier.delivery")]
    for expected in ("user mallory: 'delivery.email' is a string",
                     "user trudy: 'delivery' is a string",
                     "user trudy: 'emails' is a string, not a list",
                     "user oscar: 'delivery.email.digest': digest 'every': '1 hour'",
                     "user peggy: 'delivery.email.digest': 'max_items' 'many'"):
        assert sum(expected in w for w in warnings) == 1, (expected, warnings)


def test_a_destination_nothing_delivers_is_recorded_dead(
        config: Config, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    store.import_users([{"name": "alice", "emails": ["alice@example.org"],
                         "ircnicks": ["alice"]}])
    rule = {**RULE, "user": "alice", "destinations": ["email", "irc", "desktop"]}
    store.upsert_rules([rule])
    pipeline = make_pipeline(config, store, delivered=("email", "rss"))
    with caplog.at_level(logging.WARNING):
        assert pipeline.warn_undelivered(store.list_rules()) == \
            {"irc": "no [irc] host configured"}
        result = pipeline.process([envelope(1), envelope(2)])
    assert result.dead == {"irc": 2}
    assert result.per_destination == {"email": 2, "desktop": 2}
    rows = {(r.destination, r.state, r.attempts, r.last_error) for r in Outbox(store).rows()}
    assert rows == {("email", "pending", 0, None), ("desktop", "sent", 0, None),
                    ("irc", "dead", 0, "no [irc] host configured")}
    assert Outbox(store).depth() == 2  # only the email rows wait
    told = [r.getMessage() for r in caplog.records]
    assert sum("rules of alice send to irc, but no [irc] host configured" in m
               for m in told) == 1
    assert sum(m.startswith("irc: no [irc] host configured") for m in told) == 1
    # Once there is a backend, 'outbox retry' sends them: they were rendered.
    assert Outbox(store).retry() == 2


def test_feed_notifications_are_stored_with_the_rows_that_record_them(
        config: Config, store: Store) -> None:
    store.import_users([{"name": "alice", "emails": ["alice@example.org"]},
                        {"name": "bob", "emails": ["bob@example.org"],
                         "delivery": {"rss": {"digest": {"every": "1h"}}}}])
    store.upsert_rules([{**RULE, "user": n, "destinations": ["rss"]} for n in ("alice", "bob")])
    config = config_from_dict({"meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False},
                               "delivery": {"feed_items": 3}})
    pipeline = make_pipeline(config, store)
    result = pipeline.process([envelope(n) for n in range(5)])
    # The same messages again (redelivered by the bus): nothing is stored twice.
    again = pipeline.process([envelope(n) for n in range(5)])
    rows = Outbox(store).rows()
    assert {(r.user, r.state) for r in rows} == {("alice", "sent"), ("bob", "held")}
    assert all(r.sent_at is not None for r in rows if r.user == "alice")
    assert result.sent_at_once == {"rss": 5} and result.claimed == []
    assert again.notifications == 0 and again.sent_at_once == {"rss": 5}
    feeds = FeedStore(store.engine, 3)
    # Alice keeps her newest 3; bob's digest is stored when it is due, not now.
    items = feeds.items("alice", limit=10)
    assert [i.msg_id for i in items] == ["2026-4", "2026-3", "2026-2"]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM feed_items")).scalar() == 3
    assert all(i.title.startswith("[") and "<p>" in i.content and i.topic == TOPIC
               for i in items)
    assert feeds.items("bob") == []


def test_a_feed_item_that_cannot_be_stored_leaves_no_row_behind(
        world: tuple[Pipeline, Store]) -> None:
    pipeline, store = world
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE feed_items RENAME TO feed_items_away"))
    try:
        with pytest.raises(StorageError):
            pipeline.process([envelope(1)])
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE feed_items_away RENAME TO feed_items"))
    assert recorded(store) == [] and stored_messages(store) == []
    pipeline.process([envelope(1)])
    assert {(r.destination, r.state) for r in Outbox(store).rows()} == \
        {("email", "pending"), ("rss", "sent")}
    assert [i.msg_id for i in FeedStore(store.engine, 100).items("alice")] == ["2026-1"]
