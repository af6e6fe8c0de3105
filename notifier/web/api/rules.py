"""The caller's rules: ``/rules`` (list, create) and ``/rules/{name}`` (read, replace, delete).

A rule's JSON is the one ``notifier rules import`` reads, checked by the same
validation (:mod:`notifier.rules.validation`); its ``user`` is the caller's,
whatever the body says. Errors name the field path (``track.kind``). Each
rule comes with ``sent_7d``: how many notifications it sent in the last 7 days
(counted by UTC day, from the start of the day a week ago; see
:mod:`notifier.storage.rulecounts`).
Every change goes through the store and its change log, which a running
``notifier serve`` applies before the answer goes back (other processes'
changes, within about a second).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Response

from ...rules.validation import rule_problems
from .auth import Caller, reader, writer
from .context import ApiContext, context
from .problems import Problem, invalid

router = APIRouter(tags=["rules"])

WEEK = 7 * 86400
RULE_EXAMPLE = {"name": "My packages", "track": {"kind": "artifacts-owned"},
                "filters": {"severities": ["warning", "error"]},
                "destinations": ["email", "rss"]}


def check_rule(ctx: ApiContext, user: str, data: Any, name: str | None = None) -> dict[str, Any]:
    """``data`` as a valid rule of ``user`` (named ``name`` when given); a 422 otherwise."""
    if not isinstance(data, dict):
        raise invalid([{"field": "body", "detail": "a rule is a JSON object"}])
    data = {**data, "user": user}
    if name is not None:
        data.setdefault("name", name)
        if data["name"] != name:
            raise invalid([{"field": "name", "detail": f"the path names the rule {name!r}; "
                            "to rename a rule, create the new one and delete the old"}])
    rule, problems = rule_problems(data)
    if rule is None:
        raise invalid([{"field": field, "detail": message} for field, message in problems])
    return rule.to_dict()


def _shown(rule: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    return {**rule, "sent_7d": counts.get(rule["name"], 0)}


@router.get("/rules")
def list_rules(caller: Caller = Depends(reader),
               ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """The caller's rules, by name, each with ``sent_7d``."""
    counts = ctx.rule_counts(caller.name, ctx.clock() - WEEK)
    return [_shown(rule, counts) for rule in ctx.store.list_rules(caller.name)]


@router.post("/rules", status_code=201)
def create_rule(response: Response, data: Any = Body(examples=[RULE_EXAMPLE]),
                caller: Caller = Depends(writer),
                ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Create a rule; 409 when the caller has one of that name."""
    rule = check_rule(ctx, caller.name, data)
    if ctx.store.get_rule(caller.name, rule["name"]) is not None:
        raise Problem(409, "Rule exists", f"you already have a rule named {rule['name']!r}",
                      field="name")
    ctx.store.upsert_rules([rule])
    ctx.changed()
    response.headers["Location"] = f"/api/v1/rules/{quote(rule['name'], safe='')}"
    return _shown(rule, {})


def _own(ctx: ApiContext, caller: Caller, name: str) -> dict[str, Any]:
    rule = ctx.store.get_rule(caller.name, name)
    if rule is None:
        raise Problem(404, "No such rule", f"you have no rule named {name!r}")
    return rule


@router.get("/rules/{name}")
def read_rule(name: str, caller: Caller = Depends(reader),
              ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """One of the caller's rules."""
    rule = _own(ctx, caller, name)
    return _shown(rule, ctx.rule_counts(caller.name, ctx.clock() - WEEK))


@router.put("/rules/{name}")
def replace_rule(name: str, data: Any = Body(examples=[RULE_EXAMPLE]),
                 caller: Caller = Depends(writer),
                 ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Replace one of the caller's rules with ``data``."""
    _own(ctx, caller, name)
    rule = check_rule(ctx, caller.name, data, name)
    ctx.store.upsert_rules([rule])
    ctx.changed()
    return _shown(rule, ctx.rule_counts(caller.name, ctx.clock() - WEEK))


@router.delete("/rules/{name}", status_code=204)
def delete_rule(name: str, caller: Caller = Depends(writer),
                ctx: ApiContext = Depends(context)) -> Response:
    """Delete one of the caller's rules."""
    if not ctx.store.remove_rule(caller.name, name):
        raise Problem(404, "No such rule", f"you have no rule named {name!r}")
    ctx.changed()
    return Response(status_code=204)
