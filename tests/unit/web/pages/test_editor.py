"""The rule editor's form and the rule's JSON, both ways; problems by form field."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import FormData

from notifier.rules.model import TRACK_FIELDS, TRACK_KINDS
from notifier.rules.validation import rule_problems
from notifier.web.api.auth import Caller
from notifier.web.pages.base import Posted, field_errors, local_path
from notifier.web.pages.editor import (
    FIELDS,
    TARGET_FIELDS,
    TARGETS,
    fields_for,
    form_values,
    rule_from_form,
    split,
)

ALICE = Caller(name="alice", scope="write", via="session", is_admin=False)


def posted(**fields: Any) -> Posted:
    items = [(k, v) for k, vs in fields.items()
             for v in (vs if isinstance(vs, list) else [vs])]
    return Posted(ALICE, FormData(items))


def test_split_takes_lines_and_commas() -> None:
    assert split(" a, b\n\nc ,\r\nd ") == ["a", "b", "c", "d"]
    assert split("") == [] and split(" , \n") == []


@pytest.mark.parametrize("kind", TRACK_KINDS)
def test_a_rule_goes_through_the_form_and_back_unchanged(kind: str) -> None:
    field = TRACK_FIELDS[kind]
    rule: dict[str, Any] = {
        "user": "alice", "name": "r", "disabled": True,
        "track": {"kind": kind, **({field: ["x", "y"]} if field else {})},
        "filters": {"applications": ["bodhi"], "excluded_applications": ["copr"],
                    "severities": ["warning", "error"], "my_actions": True, "topic": "a.*"},
        "destinations": ["email", "irc"]}
    values = form_values(rule)
    lists = {t: values[t] for t in TARGET_FIELDS.values()}
    assert [t for t, text in lists.items() if text] == (
        [TARGET_FIELDS[kind]] if field else [])  # only the kind's own list is filled
    form = posted(name=values["name"], kind=values["kind"], **lists,
                  applications=values["applications"],
                  excluded_applications=values["excluded_applications"],
                  severities=values["severities"], topic=values["topic"],
                  destinations=values["destinations"],
                  **({"my_actions": "on"} if values["my_actions"] else {}),
                  **({"enabled": "on"} if values["enabled"] else {}))
    back = {"user": "alice", **rule_from_form(form)}
    checked, problems = rule_problems(back, ["email", "irc"])
    assert problems == [] and checked is not None
    assert checked.to_dict() == rule


def test_every_kind_with_a_list_has_its_own_field() -> None:
    assert set(TARGETS) == {k for k, f in TRACK_FIELDS.items() if f}
    assert len(set(TARGET_FIELDS.values())) == len(TARGETS)
    assert {t["lookup"] for t in TARGETS.values()} == {"users", "groups", "packages", None}


def test_only_the_chosen_kinds_list_is_read() -> None:
    form = posted(name="n", kind="artifacts-followed", owners="bob", groups="infra",
                  packages="kernel, gcc,\n", people="carol", patterns="*.x")
    assert rule_from_form(form)["track"] == {"kind": "artifacts-followed",
                                             "packages": ["kernel", "gcc"]}
    form = posted(name="n", kind="users-followed", packages="kernel", people="carol\nzoë")
    assert rule_from_form(form)["track"] == {"kind": "users-followed",
                                             "users": ["carol", "zoë"]}
    form = posted(name="n", kind="artifacts-owned", packages="kernel")
    assert rule_from_form(form)["track"] == {"kind": "artifacts-owned"}  # your own


def test_unchecked_boxes_and_empty_fields() -> None:
    data = rule_from_form(posted(name=" n ", kind="topics", patterns="", topic=" "))
    assert data == {"name": "n", "disabled": True, "track": {"kind": "topics"},
                    "filters": {"applications": [], "excluded_applications": [],
                                "severities": [], "my_actions": False, "topic": None},
                    "destinations": []}
    assert rule_from_form(posted(name="form", kind="topics"), "path")["name"] == "path"


def test_a_kind_without_a_list_ignores_the_list() -> None:
    data = rule_from_form(posted(name="n", kind="related-events", owners="bob", people="x"))
    assert data["track"] == {"kind": "related-events"}


def test_each_problem_goes_next_to_its_field() -> None:
    errors = [{"field": "track.users[1]", "detail": "empty"},
              {"field": "track.kind", "detail": "unknown"},
              {"field": "filters.excluded_applications[0]", "detail": "bad"},
              {"field": "filters.applications", "detail": "list"},
              {"field": "destinations[0]", "detail": "unknown destination"},
              {"field": "snoozed_until", "detail": "number"}]
    expected = {"kind": ["unknown"], "excluded_applications": ["bad"],
                "applications": ["list"], "destinations": ["unknown destination"],
                "": ["snoozed_until: number"]}
    assert field_errors(errors, fields_for("users-followed")) == {"people": ["empty"],
                                                                   **expected}
    assert field_errors(errors, fields_for("artifacts-owned")) == {"owners": ["empty"],
                                                                    **expected}
    # a list the kind does not take goes next to the kind
    assert field_errors(errors, fields_for("topics")) == {**expected, "kind": ["empty", "unknown"]}
    assert field_errors(errors, FIELDS) == field_errors(errors, fields_for("related-events"))


@pytest.mark.parametrize("target, expected", [
    ("/inbox?cursor=x", "/inbox?cursor=x"), ("/rules", "/rules"),
    ("//evil.example/x", "/inbox"), ("https://evil.example/", "/inbox"),
    ("/\\evil.example", "/inbox"), ("", "/inbox"), ("inbox", "/inbox")])
def test_back_goes_only_to_this_site(target: str, expected: str) -> None:
    assert local_path(target, "/inbox") == expected
