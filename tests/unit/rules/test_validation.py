"""Reading rules from JSON: defaults, every error named, all-or-nothing lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notifier.errors import InputError, RuleError
from notifier.rules import DEFAULT_FILTERS, parse_rule, parse_rules
from notifier.rules.validation import load_rules_file

DESTS = ["desktop", "email", "irc", "rss"]


def rule(**over):
    data = {"user": "alice", "name": "My packages", "track": {"kind": "artifacts-owned"},
            "destinations": ["email"]}
    data.update(over)
    return data


def error_of(data, **kw) -> str:
    with pytest.raises(RuleError) as info:
        parse_rule(data, source="rules.json", index=3, destinations=DESTS, **kw)
    return str(info.value)


def test_minimal_rule_takes_every_default():
    r = parse_rule(rule(), destinations=DESTS)
    assert r.filters is DEFAULT_FILTERS
    assert r.disabled is False
    assert r.owners == ("alice",)
    assert r.to_dict() == {
        "user": "alice", "name": "My packages", "disabled": False,
        "track": {"kind": "artifacts-owned"},
        "filters": {"applications": [], "excluded_applications": [],
                    "severities": ["info", "warning", "error"], "my_actions": False,
                    "topic": None},
        "destinations": ["email"]}


def test_the_issue_example_round_trips():
    data = {"user": "alice", "name": "My packages", "disabled": False,
            "track": {"kind": "artifacts-owned"},
            "filters": {"applications": [], "excluded_applications": [],
                        "severities": ["info", "warning", "error"], "my_actions": False,
                        "topic": None},
            "destinations": ["email", "irc", "rss", "desktop"]}
    r = parse_rule(data, destinations=DESTS)
    assert r.destinations == ("desktop", "email", "irc", "rss")
    again = parse_rule(r.to_dict(), destinations=DESTS)
    assert again.to_dict() == r.to_dict()


def test_lists_are_sorted_deduplicated_and_apps_lowercased():
    r = parse_rule(rule(track={"kind": "artifacts-followed", "packages": ["z", "a", "z"]},
                        filters={"applications": ["Bodhi", "KOJI"],
                                 "excluded_applications": ["Pagure"]},
                        destinations=["irc", "email", "irc"]), destinations=DESTS)
    assert r.targets == ("a", "z")
    assert r.filters.applications == {"bodhi", "koji"}
    assert r.filters.excluded_applications == {"pagure"}
    assert r.destinations == ("email", "irc")


def test_shared_dict_shares_equal_parts():
    shared: dict = {}
    one = parse_rule(rule(filters={"severities": ["error"]}), destinations=DESTS,
                     shared=shared)
    two = parse_rule(rule(user="bob", filters={"severities": ["error"]}),
                     destinations=DESTS, shared=shared)
    assert one.filters is two.filters
    assert one.destinations is two.destinations


def test_error_names_file_index_name_and_field():
    text = error_of(rule(track={"kind": "artifacts-followed"}))
    assert text == ("rules.json: rule 3 ('My packages'): track.packages: missing "
                    "(kind 'artifacts-followed' needs a list of packages)")


@pytest.mark.parametrize("data, expected", [
    (rule(destination=["email"]),
     "destination: unknown field (did you mean 'destinations'?)"),
    (rule(track={"kind": "artifact-owned"}),
     "track.kind: unknown kind 'artifact-owned' (did you mean 'artifacts-owned'?)"),
    (rule(track={"kind": "topics", "pattern": ["a.*"]}),
     "track.pattern: unknown field (did you mean 'patterns'?)"),
    (rule(destinations=["emial"]),
     "destinations[0]: unknown destination 'emial' (did you mean 'email'?)"),
    (rule(filters={"severities": ["warn"]}),
     "filters.severities[0]: unknown severity 'warn' (did you mean 'warning'?)"),
    (rule(filters={"my_action": True}),
     "filters.my_action: unknown field (did you mean 'my_actions'?)"),
])
def test_unknown_words_get_the_nearest_valid_one(data, expected):
    assert expected in error_of(data)


@pytest.mark.parametrize("data, expected", [
    ("a rule", "rule: must be a JSON object, not string"),
    (rule(user=""), "user: must not be empty"),
    (rule(name=3), "name: must be a string, not number 3"),
    (rule(disabled="no"), "disabled: must be true or false, not string"),
    (rule(track=["artifacts-owned"]), "track: must be an object with a 'kind'"),
    (rule(track={}), "track.kind: missing (required)"),
    (rule(track={"kind": "related-events", "users": ["bob"]}),
     "track.users: not used by kind 'related-events' (it takes no list)"),
    (rule(track={"kind": "topics", "packages": ["x"], "patterns": ["a"]}),
     "track.packages: not used by kind 'topics' (it takes 'patterns')"),
    (rule(track={"kind": "users-followed", "users": "bob"}),
     "track.users: must be a list of strings, not string \"bob\""),
    (rule(track={"kind": "users-followed", "users": []}),
     "track.users: must list at least one value"),
    (rule(track={"kind": "artifacts-group-owned", "groups": ["ok", 7, " "]}),
     "track.groups[1]: must be a non-empty string, not number 7"),
    (rule(filters=[]), "filters: must be an object, not list"),
    (rule(filters={"severities": []}), "filters.severities: must list at least one value"),
    (rule(filters={"topic": ""}), "filters.topic: must not be empty"),
    (rule(filters={"my_actions": 1}), "filters.my_actions: must be true or false"),
    (rule(destinations=[]), "destinations: must list at least one value"),
    ({"user": "a"}, "name: missing (required)"),
])
def test_bad_fields(data, expected):
    assert expected in error_of(data)


def test_every_problem_of_a_rule_is_listed():
    text = error_of(rule(user="", destinations=["mail"], filters={"severities": ["x"]}))
    lines = text.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("rules.json: rule 3 ('My packages'): ") for line in lines)


def test_group_kind_tracks_only_its_groups_and_owned_users_are_optional():
    r = parse_rule(rule(track={"kind": "artifacts-owned", "users": ["bob", "alice"]}),
                   destinations=DESTS)
    assert r.owners == ("alice", "bob")
    assert r.to_dict()["track"] == {"kind": "artifacts-owned", "users": ["alice", "bob"]}


def test_unknown_top_level_keys_can_be_ignored_for_stored_rules():
    r = parse_rule(rule(id=4, created_at=1.0), destinations=DESTS, ignore_unknown=True)
    assert r.name == "My packages"


def test_default_destinations_are_the_backend_names():
    assert parse_rule(rule(destinations=["desktop"])).destinations == ("desktop",)


def test_list_is_all_or_nothing_and_reports_every_bad_rule():
    good = rule(name="fine")
    with pytest.raises(RuleError) as info:
        parse_rules([good, rule(name="one", destinations=["x"]), good,
                     rule(name="two", track={"kind": "nope"})],
                    source="r.json", destinations=DESTS)
    text = str(info.value)
    assert text.startswith("r.json: 3 of 4 rules are invalid:")
    assert "r.json: rule 1 ('one'): destinations[0]" in text
    assert "r.json: rule 2 ('fine'): user, name: same user and name as rule 0" in text
    assert "r.json: rule 3 ('two'): track.kind" in text


def test_list_must_be_a_list():
    with pytest.raises(RuleError, match="r.json: must hold a JSON list of rules, not object"):
        parse_rules({"user": "a"}, source="r.json", destinations=DESTS)


def test_load_rules_file(tmp_path: Path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([rule(), rule(user="bob")]), encoding="utf-8")
    assert [r.user for r in load_rules_file(str(path), DESTS)] == ["alice", "bob"]
    path.write_text("[{]", encoding="utf-8")
    with pytest.raises(InputError, match=r"rules.json:1:3: not valid JSON"):
        load_rules_file(str(path), DESTS)
    with pytest.raises(InputError, match="missing.json: cannot read"):
        load_rules_file(str(tmp_path / "missing.json"), DESTS)
