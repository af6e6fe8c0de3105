"""A varied message history and rules of every kind, for the rule preview's tests.

Messages name agents, users, packages and groups (through a ``[[meta.mappings]]``
entry), carry severities in fedora-messaging headers, and come from several
applications, some in mixed case; some have no packages or no agent at all.
"""

from __future__ import annotations

import random
from typing import Any

from notifier.config import Config, config_from_dict

APPS = ["bodhi", "Koji", "pagure", "distgit", "copr"]
EVENTS = ["update.comment", "build.state.change", "pull-request.new", "receive", "x"]
PEOPLE = ["alice", "bob", "carol", "dave", "zoë", "李雷"]
PACKAGES = ["kernel", "python3", "gcc", "ñandú", "firefox", "kernel-headers"]
GROUPS = ["infra", "python-sig", "Ω-team"]
SEVERITY_LEVELS = [10, 20, 20, 20, 30, 40, None]

OWNERS = {"packages": {
    "kernel": {"users": ["alice"], "groups": ["infra"]},
    "kernel-headers": {"users": ["alice", "bob"]},
    "python3": {"users": ["carol"], "groups": ["python-sig"]},
    "ñandú": {"users": ["zoë"], "groups": ["Ω-team"]},
}}


def preview_config(database_url: str, source: str = "<test>", **extra: Any) -> Config:
    """A config that describes the mix's messages: agent, users, packages, groups."""
    return config_from_dict({
        **extra,
        "database_url": database_url,
        "meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False,
                 "mappings": [{"topic": "org.example.*", "agent_path": "agent",
                               "usernames_paths": ["agent", "users"],
                               "packages_paths": ["packages"], "groups_paths": ["groups"],
                               "summary_path": "text", "link_path": "url"}]},
    }, source)


def history(count: int, now: float, days: float = 10, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` envelopes spread over the last ``days`` days."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        app = rnd.choice(APPS)
        body: dict[str, Any] = {"text": f"message {i}", "url": f"https://example.org/{i}"}
        if rnd.random() < 0.85:
            body["agent"] = rnd.choice(PEOPLE)
        body["users"] = rnd.sample(PEOPLE, rnd.randint(0, 2))
        body["packages"] = rnd.sample(PACKAGES, rnd.choice([0, 1, 1, 2]))
        body["groups"] = rnd.sample(GROUPS, rnd.choice([0, 0, 1]))
        envelope: dict[str, Any] = {
            "topic": f"org.example.prod.{app}.{rnd.choice(EVENTS)}",
            "msg_id": f"m-{seed}-{i}", "timestamp": now - rnd.uniform(0, days * 86400),
            "msg": body}
        level = rnd.choice(SEVERITY_LEVELS)
        if level is not None:
            envelope["headers"] = {"fedora_messaging_severity": level}
        out.append(envelope)
    return out


def rules() -> list[dict[str, Any]]:
    """Rules of every track kind, with and without filters."""
    base = {"destinations": ["email"]}
    specs: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("alice", {"kind": "artifacts-owned"}, {}),
        ("alice", {"kind": "artifacts-owned"}, {"my_actions": True, "severities": ["debug"]}),
        ("bob", {"kind": "artifacts-owned", "users": ["alice", "carol"]},
         {"applications": ["koji", "bodhi"]}),
        ("carol", {"kind": "artifacts-group-owned", "groups": ["python-sig", "Ω-team"]}, {}),
        ("dave", {"kind": "artifacts-group-owned", "groups": ["nobody"]}, {}),
        ("dave", {"kind": "artifacts-followed", "packages": ["kernel", "ñandú"]},
         {"excluded_applications": ["copr"], "severities": ["warning", "error"]}),
        ("zoë", {"kind": "artifacts-followed", "packages": ["gcc"]},
         {"topic": "org.example.prod.*.build.*"}),
        ("bob", {"kind": "related-events"}, {}),
        ("李雷", {"kind": "related-events"}, {"my_actions": True}),
        ("carol", {"kind": "users-followed", "users": ["alice", "zoë"]}, {}),
        ("alice", {"kind": "users-followed", "users": ["alice"]}, {}),
        ("alice", {"kind": "users-followed", "users": ["alice"]}, {"my_actions": True}),
        ("erin", {"kind": "topics", "patterns": ["org.example.prod.koji.*"]}, {}),
        ("erin", {"kind": "topics", "patterns": ["*.update.*", "*[bc]o*.receive"]},
         {"applications": ["pagure", "distgit", "bodhi"], "severities": SEVERITIES}),
        ("erin", {"kind": "topics", "patterns": ["*"]},
         {"topic": "*.x", "severities": ["error"]}),
        ("erin", {"kind": "topics", "patterns": ["org.nothing.*"]}, {}),
    ]
    return [{**base, "user": user, "name": f"r{i}", "track": track, "filters": filters}
            for i, (user, track, filters) in enumerate(specs)]


SEVERITIES = ["debug", "info", "warning", "error"]
