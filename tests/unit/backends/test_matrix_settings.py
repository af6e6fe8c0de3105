"""The matrix destination's settings, address checks and room cache, without a homeserver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notifier.backends.matrix import MatrixBackend, RoomCache
from notifier.config import config_from_dict
from notifier.delivery.settings import address_for, digest_settings
from notifier.errors import ConfigError, PermanentDeliveryError
from notifier.notification import Notification
from notifier.users.records import user_record_problems
from notifier.users.settings import matrix_id_problem


@pytest.mark.parametrize(("key", "value"), [("homeserver", "matrix.example.org"),
                                            ("homeserver", "ftp://example.org"),
                                            ("user_id", "notifier"),
                                            ("user_id", "@notifier")])
def test_bad_matrix_config_names_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        config_from_dict({"matrix": {key: value}}, "site.toml")


def test_unknown_matrix_key_is_named() -> None:
    with pytest.raises(ConfigError, match="token"):
        config_from_dict({"matrix": {"token": "x"}}, "site.toml")


def test_setup_needs_the_three_keys() -> None:
    backend = MatrixBackend(config_from_dict({"matrix": {"homeserver": "https://m.example.org"}}))
    with pytest.raises(ConfigError, match="user_id"):
        backend.setup()


@pytest.mark.parametrize("value", ["@alice:example.org", "@a.b_c=d/e+f-g:matrix.example.org",
                                   "@alice:example.org:8448", "@alice:[::1]:8448"])
def test_good_matrix_ids(value: str) -> None:
    assert matrix_id_problem(value) is None


@pytest.mark.parametrize("value", ["alice", "@alice", "@Alice:example.org", "@al ice:x.org",
                                   "#room:example.org", "@" + "a" * 260 + ":x.org"])
def test_bad_matrix_ids(value: str) -> None:
    assert matrix_id_problem(value)


def test_a_record_with_a_bad_matrix_id_names_the_field() -> None:
    record, problems = user_record_problems(
        {"name": "alice", "delivery": {"matrix": {"user_id": "alice:example.org"}}})
    assert record is None
    assert any(p.startswith("delivery.matrix.user_id: ") for p in problems), problems


def test_the_matrix_address_and_digest_come_from_the_settings() -> None:
    user = {"name": "alice", "emails": ["alice@example.org"],
            "delivery": {"matrix": {"user_id": "@alice:example.org",
                                    "digest": {"every": "1h"}}}}
    record, problems = user_record_problems(user)
    assert problems == [] and record is not None
    assert address_for(user, "matrix") == "@alice:example.org"
    assert digest_settings(user, "matrix") == {"every": "1h", "max_items": 100}
    # no setting: no Matrix address (never the email or the name)
    assert address_for({"name": "bob", "emails": ["bob@example.org"]}, "matrix") is None


def test_a_malformed_address_is_permanent_before_any_request(tmp_path: Path) -> None:
    backend = MatrixBackend(config_from_dict({"matrix": {
        "homeserver": "http://127.0.0.1:9", "user_id": "@bot:example.org",
        "access_token": "t", "rooms_file": str(tmp_path / "rooms.json")}}))
    note = Notification(user="alice", destination="matrix", address="alice", msg_id="m",
                        topic="t", app="a", content={"body": "hi"})
    with pytest.raises(PermanentDeliveryError, match="'alice' is not a Matrix user id"):
        backend.send(note)
    backend.close()


def test_the_room_cache_survives_and_belongs_to_one_bot(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "rooms.json"
    cache = RoomCache(path, "@bot:example.org")
    cache.put("@alice:example.org", "!a:example.org")
    cache.put("@bob:example.org", "!b:example.org")
    cache.put("@bob:example.org", None)
    assert RoomCache(path, "@bot:example.org").rooms == {"@alice:example.org": "!a:example.org"}
    assert RoomCache(path, "@other:example.org").rooms == {}
    path.write_text("not json")
    assert RoomCache(path, "@bot:example.org").rooms == {}
    path.write_text(json.dumps({"user_id": "@bot:example.org", "rooms": {"@c:x.org": 3}}))
    assert RoomCache(path, "@bot:example.org").rooms == {}
