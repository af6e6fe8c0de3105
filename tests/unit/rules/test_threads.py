"""Changes from one thread while another matches: no error, and the end state is right."""

from __future__ import annotations

import sys
import threading

import pytest

from notifier.rules import Matcher, ReferenceMatcher, parse_rule

DESTS = ["email"]


@pytest.fixture
def busy_switching():
    """Switch threads as often as possible, so that races show up."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(saved)


def rule(user: str, kind: str, **track):
    return parse_rule({"user": user, "name": "r", "track": {"kind": kind, **track},
                       "destinations": DESTS}, destinations=DESTS)


def test_changes_while_matching(busy_switching):
    owners = [f"u{i}" for i in range(40)]
    matcher = Matcher([rule(u, "artifacts-owned") for u in owners]
                      + [rule(f"t{i}", "topics", patterns=["a.*"]) for i in range(20)])
    record = {"topic": "a.b", "packages": ["kernel"], "severity": "info"}
    stop = threading.Event()
    errors: list[BaseException] = []

    def change() -> None:
        try:
            n = 0
            while not stop.is_set():
                for u in owners:
                    matcher.add_owner("kernel", "user", u)
                matcher.replace_rule(rule(f"t{n % 20}", "topics", patterns=[f"a.{n % 7}*"]))
                for u in owners[::2]:
                    matcher.remove_owner("kernel", "user", u)
                n += 1
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=change)
    thread.start()
    try:
        for _ in range(3000):
            matcher.match(record)
    except BaseException as exc:
        errors.append(exc)
    finally:
        stop.set()
        thread.join(10)
    assert errors == []
    reference = ReferenceMatcher(list(matcher.index),
                                 [("kernel", "user", u) for u in matcher.index.user_owners
                                  .get("kernel", ())])
    assert matcher.match(record) == reference.match(record)
