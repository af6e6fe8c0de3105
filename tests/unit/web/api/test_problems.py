"""Field paths in problem+json errors."""

from __future__ import annotations

from notifier.web.api.problems import Problem, field_path, invalid


def test_field_paths_read_as_the_rules_validation_writes_them() -> None:
    assert field_path(("body", "track", "kind")) == "track.kind"
    assert field_path(("body", "filters", "severities", 1)) == "filters.severities[1]"
    assert field_path(("body", 0, "name")) == "[0].name"
    assert field_path(("path", "token_id")) == "token_id"
    assert field_path(("body",)) == "body"
    assert field_path(()) == "body"


def test_a_problem_with_a_field() -> None:
    problem = Problem(409, "Rule exists", "you already have one", field="name")
    assert problem.errors == [{"field": "name", "detail": "you already have one"}]
    made = invalid([{"field": "a", "detail": "x"}, {"field": "b[0]", "detail": "y"}])
    assert made.status == 422 and made.detail == "a: x; b[0]: y"
