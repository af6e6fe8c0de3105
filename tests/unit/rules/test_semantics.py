"""Rule semantics, case by case, on both the indexed and the reference matcher."""

from __future__ import annotations

import pytest

from notifier.errors import InputError, RuleError
from notifier.rules import Matcher, Recipient, ReferenceMatcher, parse_rule

DESTS = ["desktop", "email", "irc", "rss"]
OWNERS = [("kernel", "user", "alice"), ("kernel", "group", "kernel-maint"),
          ("python3", "user", "bob"), ("python3", "group", "python-sig"),
          ("ñandú", "user", "zoë")]


def rule(user="alice", name="r", kind="artifacts-owned", field=None, targets=None,
         destinations=("email",), **filters):
    track = {"kind": kind}
    if targets is not None:
        track[field] = list(targets)
    return parse_rule({"user": user, "name": name, "track": track, "filters": filters,
                       "destinations": list(destinations)}, destinations=DESTS)


def message(**over):
    record = {"msg_id": "m1", "topic": "org.fedoraproject.prod.bodhi.update.comment",
              "app": "bodhi", "summary": "s", "link": None, "icon": None,
              "usernames": [], "agent": None, "packages": [], "groups": [],
              "severity": "info"}
    record.update(over)
    return record


@pytest.fixture(params=[Matcher, ReferenceMatcher], ids=["indexed", "reference"])
def make(request):
    def build(*rules, ownership=OWNERS):
        return request.param(rules, ownership)
    return build


def users(result: list[Recipient]) -> list[str]:
    return [r.user for r in result]


def test_artifacts_owned_by_default_tracks_the_rules_user(make):
    m = make(rule())
    assert m.match(message(packages=["kernel"]), explain=True) == [
        Recipient("alice", ("r",), ("email",), {"r": "package 'kernel' is owned by alice"})]
    assert m.match(message(packages=["python3"])) == []


def test_artifacts_owned_with_a_users_list(make):
    m = make(rule(field="users", targets=["bob", "zoë"]))
    assert users(m.match(message(packages=["python3"]))) == ["alice"]
    assert m.match(message(packages=["ñandú", "python3"]), explain=True)[0].why == {
        "r": "package 'ñandú' is owned by zoë"}
    assert m.match(message(packages=["kernel"])) == []


def test_group_owned(make):
    m = make(rule(kind="artifacts-group-owned", field="groups", targets=["python-sig"]))
    assert m.match(message(packages=["python3"]), explain=True)[0].why == {
        "r": "package 'python3' is owned by group 'python-sig'"}
    assert m.match(message(packages=["kernel"])) == []


def test_followed_packages(make):
    m = make(rule(kind="artifacts-followed", field="packages", targets=["gcc", "kernel"]))
    assert m.match(message(packages=["kernel"]), explain=True)[0].why == {
        "r": "package 'kernel' is followed"}
    assert m.match(message(packages=["python3"])) == []


def test_related_events(make):
    m = make(rule(kind="related-events"))
    assert m.match(message(usernames=["alice", "bob"]), explain=True)[0].why == {
        "r": "alice is one of the message's users"}
    assert m.match(message(usernames=["bob"])) == []


def test_users_followed(make):
    m = make(rule(kind="users-followed", field="users", targets=["bob"]))
    assert m.match(message(agent="bob"), explain=True)[0].why == {
        "r": "agent 'bob' is followed"}
    assert m.match(message(agent="carol", usernames=["bob"])) == []
    assert m.match(message(agent=None)) == []


def test_topics_are_case_sensitive_globs(make):
    m = make(rule(kind="topics", field="patterns", targets=["*.bodhi.update.*"]))
    assert m.match(message(), explain=True)[0].why == {
        "r": "topic matches '*.bodhi.update.*'"}
    assert m.match(message(topic="org.fedoraproject.prod.Bodhi.update.comment")) == []


def test_applications_filter_is_case_insensitive_and_empty_means_all(make):
    m = make(rule(kind="related-events", applications=["Bodhi"]))
    assert users(m.match(message(app="BODHI", usernames=["alice"]))) == ["alice"]
    assert m.match(message(app="koji", usernames=["alice"])) == []
    assert m.match(message(app=None, usernames=["alice"])) == []
    m = make(rule(kind="related-events"))
    assert users(m.match(message(app=None, usernames=["alice"]))) == ["alice"]


def test_excluded_applications(make):
    m = make(rule(kind="related-events", excluded_applications=["KOJI"]))
    assert m.match(message(app="Koji", usernames=["alice"])) == []
    assert users(m.match(message(app="bodhi", usernames=["alice"]))) == ["alice"]
    assert users(m.match(message(app=None, usernames=["alice"]))) == ["alice"]


@pytest.mark.parametrize("severity, default, errors_only", [
    ("debug", False, False), ("info", True, False), ("warning", True, False),
    ("error", True, True)])
def test_severities(make, severity, default, errors_only):
    m = make(rule(kind="related-events", name="default"),
             rule(kind="related-events", name="errors", severities=["error"]))
    got = m.match(message(usernames=["alice"], severity=severity))
    names = got[0].rules if got else ()
    assert ("default" in names) == default
    assert ("errors" in names) == errors_only


def test_my_actions(make):
    mine = message(packages=["kernel"], agent="alice", usernames=["alice"])
    assert make(rule()).match(mine) == []
    assert users(make(rule(my_actions=True)).match(mine)) == ["alice"]
    assert users(make(rule()).match(dict(mine, agent="bob"))) == ["alice"]


def test_topic_filter(make):
    m = make(rule(topic="org.fedoraproject.*.bodhi.*"))
    assert users(m.match(message(packages=["kernel"]))) == ["alice"]
    assert m.match(message(packages=["kernel"], topic="org.fedoraproject.prod.git.receive")) \
        == []


def test_disabled_rule_matches_nothing(make):
    on = {"user": "alice", "name": "off", "disabled": False,
          "track": {"kind": "related-events"}, "destinations": ["irc"]}
    off = parse_rule({**on, "disabled": True}, destinations=DESTS)
    assert make(off).match(message(usernames=["alice"])) == []
    # The same rule enabled matches that message.
    assert make(parse_rule(on, destinations=DESTS)).match(message(usernames=["alice"])) != []


def test_recipients_sorted_rules_sorted_destinations_unioned(make):
    m = make(rule("zoë", "b", kind="related-events", destinations=["rss"]),
             rule("zoë", "a", kind="topics", field="patterns", targets=["*"],
                  destinations=["irc", "email"]),
             rule("Émile", "x", kind="related-events"),
             rule("bob", "x", kind="related-events", destinations=["desktop"]))
    got = m.match(message(usernames=["zoë", "bob", "Émile"]))
    assert got == [
        Recipient("bob", ("x",), ("desktop",)),
        Recipient("zoë", ("a", "b"), ("email", "irc", "rss")),
        Recipient("Émile", ("x",), ("email",)),
    ]
    assert got[1].to_dict() == {"user": "zoë", "rules": ["a", "b"],
                                "destinations": ["email", "irc", "rss"]}


def test_one_rule_matching_through_several_keys_counts_once(make):
    m = make(rule(kind="artifacts-followed", field="packages", targets=["kernel", "python3"]),
             rule(name="own", field="users", targets=["alice", "bob"]))
    got = m.match(message(packages=["kernel", "python3"]))
    assert got == [Recipient("alice", ("own", "r"), ("email",))]


def test_a_message_with_missing_fields(make):
    m = make(rule(), rule(name="t", kind="topics", field="patterns", targets=["*"]),
             rule(name="x", kind="topics", field="patterns", targets=["x*"]))
    assert m.match({"topic": "x"}) == [Recipient("alice", ("t", "x"), ("email",))]
    # No topic is the empty topic, which "*" matches.
    assert m.match({}) == [Recipient("alice", ("t",), ("email",))]


def test_changes(make):
    m = make(rule())
    with pytest.raises(RuleError, match="alice already has a rule named 'r'"):
        m.add_rule(rule())
    assert m.replace_rule(rule(destinations=["irc"])) is not None
    assert m.match(message(packages=["kernel"]))[0].destinations == ("irc",)
    assert m.remove_owner("kernel", "user", "alice") is True
    assert m.remove_owner("kernel", "user", "alice") is False
    assert m.match(message(packages=["kernel"])) == []
    assert m.add_owner("kernel", "user", "alice") is True
    assert m.add_owner("kernel", "user", "alice") is False
    assert users(m.match(message(packages=["kernel"]))) == ["alice"]
    assert m.remove_rule("alice", "r") is not None
    assert m.remove_rule("alice", "r") is None
    assert m.match(message(packages=["kernel"])) == []
    with pytest.raises(InputError, match="owner kind must be 'user' or 'group'"):
        m.add_owner("kernel", "team", "x")


def test_index_forgets_everything_removed():
    m = Matcher()
    rules = [rule(), rule(name="g", kind="artifacts-group-owned", field="groups", targets=["g"]),
             rule(name="f", kind="artifacts-followed", field="packages", targets=["kernel"]),
             rule(name="e", kind="related-events"),
             rule(name="u", kind="users-followed", field="users", targets=["bob"]),
             rule(name="t", kind="topics", field="patterns", targets=["a.*", "*.b", "x"])]
    for r in rules:
        m.add_rule(r)
    for owner in OWNERS:
        m.add_owner(*owner)
    for r in rules:
        m.remove_rule(r.user, r.name)
    for owner in OWNERS:
        m.remove_owner(*owner)
    assert len(m.index) == 0
    assert set(m.index.stats().values()) == {0}


def test_many_rules_under_one_key(make):
    followers = [rule(f"user{i:02}", kind="artifacts-followed", field="packages",
                      targets=["kernel"]) for i in range(30)]
    m = make(*followers)
    assert users(m.match(message(packages=["kernel"]))) == [f"user{i:02}" for i in range(30)]
    for i in range(0, 30, 2):
        assert m.remove_rule(f"user{i:02}", "r") is not None
    expected = [f"user{i:02}" for i in range(1, 30, 2)]
    assert users(m.match(message(packages=["kernel"]))) == expected
    for i in range(1, 27, 2):
        m.remove_rule(f"user{i:02}", "r")
    assert users(m.match(message(packages=["kernel"]))) == ["user27", "user29"]
    m.add_rule(followers[0])
    assert users(m.match(message(packages=["kernel"]))) == ["user00", "user27", "user29"]
