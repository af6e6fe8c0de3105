"""A snoozed rule matches nothing until its time, on both matchers, and reads back whole."""

from __future__ import annotations

import time

import pytest

from notifier.errors import RuleError
from notifier.rules import Matcher, ReferenceMatcher, parse_rule

DESTS = ["email", "rss"]
OWNERS = [("kernel", "user", "alice"), ("kernel", "user", "bob")]


def rule(user: str, snoozed_until: object = None) -> object:
    data = {"user": user, "name": "mine", "track": {"kind": "artifacts-owned"},
            "destinations": ["email"]}
    if snoozed_until is not None:
        data["snoozed_until"] = snoozed_until
    return parse_rule(data, destinations=DESTS)


MESSAGE = {"msg_id": "m1", "topic": "t", "app": "koji", "usernames": [], "agent": None,
           "packages": ["kernel"], "severity": "info"}


@pytest.mark.parametrize("make", [Matcher, ReferenceMatcher], ids=["indexed", "reference"])
def test_snoozed_rule_is_skipped_until_its_time(make: type) -> None:
    now = time.time()
    matcher = make([rule("alice", now + 3600), rule("bob", now - 1)], OWNERS)
    assert [r.user for r in matcher.match(MESSAGE)] == ["bob"]  # bob's snooze is over
    matcher.replace_rule(rule("alice"))  # unsnoozed: a change like any other
    assert [r.user for r in matcher.match(MESSAGE)] == ["alice", "bob"]


def test_snooze_reads_back_and_is_checked() -> None:
    snoozed = rule("alice", 1_900_000_000)
    assert snoozed.snoozed_until == 1_900_000_000.0
    assert snoozed.to_dict()["snoozed_until"] == 1_900_000_000.0
    assert parse_rule(snoozed.to_dict(), destinations=DESTS).snoozed_until == 1_900_000_000.0
    assert "snoozed_until" not in rule("alice").to_dict()  # an unsnoozed rule is as before
    with pytest.raises(RuleError, match="snoozed_until: must be a time"):
        rule("alice", "tomorrow")
    with pytest.raises(RuleError, match="snoozed_until: must be a time"):
        rule("alice", True)
