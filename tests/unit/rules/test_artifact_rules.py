"""Rules on containers, modules and flatpaks, as on packages: validated, matched (indexed and
reference), explained, kept in the snapshot and previewed from the history's index."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import pytest

from notifier.config import config_from_dict
from notifier.errors import RuleError
from notifier.meta import Describer
from notifier.rules import Matcher, ReferenceMatcher, parse_rule
from notifier.rules.loading import ENV
from notifier.rules.model import Rule
from notifier.rules.preview import RulePreview, scan
from notifier.rules.snapshot import FORMAT, decode, digest, encode
from notifier.rules.validation import rule_problems
from notifier.storage import Store, rulesnapshot, termquery

DESTS = ["email", "irc", "rss"]
#: one name in every kind: the kinds must be kept apart
OWNERSHIP = [("firefox", "user", "alice"), ("containers/firefox", "user", "bob"),
             ("modules/firefox", "group", "mod-sig"), ("flatpaks/firefox", "user", "carol"),
             ("flatpaks/firefox", "group", "desktop-sig"), ("containers/toolbox", "group",
                                                            "desktop-sig")]


def rule(track: dict[str, Any], user: str = "dave", name: str = "r", **extra: Any) -> Rule:
    return parse_rule({"user": user, "name": name, "track": track, "destinations": ["email"],
                       **extra}, destinations=DESTS)


def record(**lists: list[str]) -> dict[str, Any]:
    return {"topic": "org.fedoraproject.prod.git.receive", "app": "git", "usernames": [],
            "agent": "someone", "severity": "info", "packages": [], "containers": [],
            "modules": [], "flatpaks": [], **lists}


# -- validation -------------------------------------------------------------------------

def test_followed_artifacts_are_kept_by_key_whatever_the_spelling():
    r = rule({"kind": "artifacts-followed", "packages": [
        "kernel", "rpms/kernel", "container/fedora-toolbox", "containers/fedora-toolbox",
        "modules/nodejs", "flatpak/org.gnome.Maps"]})
    assert r.targets == ("containers/fedora-toolbox", "flatpaks/org.gnome.Maps", "kernel",
                         "modules/nodejs")
    assert r.to_dict()["track"] == {"kind": "artifacts-followed", "packages": list(r.targets)}
    assert parse_rule(r.to_dict(), destinations=DESTS).targets == r.targets


def test_rules_on_packages_read_as_they_always_did():
    data = {"user": "a", "name": "n", "track": {"kind": "artifacts-followed",
                                               "packages": ["python3", "gcc"]},
            "destinations": ["email"]}
    assert parse_rule(data, destinations=DESTS).to_dict()["track"] == {
        "kind": "artifacts-followed", "packages": ["gcc", "python3"]}


def test_an_unknown_kind_is_reported_with_the_nearest_one():
    data = {"user": "a", "name": "n", "destinations": ["email"], "track": {
        "kind": "artifacts-followed", "packages": ["kernel", "contaners/toolbox", "flatpaks/"]}}
    with pytest.raises(RuleError) as caught:
        parse_rule(data, source="rules.json", destinations=DESTS)
    assert str(caught.value).splitlines() == [
        "rules.json: rule ('n'): track.packages[1]: unknown artifact kind 'contaners' "
        "(did you mean 'containers'?); one of: rpms, containers, modules, flatpaks "
        "(in 'contaners/toolbox'; write KIND/NAME, or the bare name of a package)",
        "rules.json: rule ('n'): track.packages[2]: 'flatpaks/' names no flatpak: "
        "write flatpaks/NAME"]
    # The API reports each problem under its field.
    got, problems = rule_problems(data, DESTS)
    assert got is None
    assert [field for field, _ in problems] == ["track.packages[1]", "track.packages[2]"]


# -- matching ---------------------------------------------------------------------------

RULES = [
    rule({"kind": "artifacts-owned"}, user="bob", name="mine"),
    rule({"kind": "artifacts-owned", "users": ["carol"]}, user="erin", name="carol's"),
    rule({"kind": "artifacts-group-owned", "groups": ["desktop-sig"]}, user="erin",
         name="desktop"),
    rule({"kind": "artifacts-group-owned", "groups": ["mod-sig"]}, user="frank", name="mods"),
    rule({"kind": "artifacts-followed", "packages": ["modules/firefox"]}, user="gina",
         name="module"),
    rule({"kind": "artifacts-followed", "packages": ["firefox"]}, user="hal", name="package"),
    rule({"kind": "artifacts-followed", "packages": ["container/toolbox"]}, user="hal",
         name="toolbox"),
]


@pytest.mark.parametrize(("message", "expected"), [
    (record(containers=["firefox"]), {"bob": {"mine": "container 'firefox' is owned by bob"}}),
    (record(flatpaks=["firefox"]), {
        "erin": {"carol's": "flatpak 'firefox' is owned by carol",
                 "desktop": "flatpak 'firefox' is owned by group 'desktop-sig'"}}),
    (record(modules=["firefox"]), {
        "frank": {"mods": "module 'firefox' is owned by group 'mod-sig'"},
        "gina": {"module": "module 'firefox' is followed"}}),
    (record(packages=["firefox"]), {"hal": {"package": "package 'firefox' is followed"}}),
    (record(containers=["toolbox"]), {
        "erin": {"desktop": "container 'toolbox' is owned by group 'desktop-sig'"},
        "hal": {"toolbox": "container 'toolbox' is followed"}}),
    (record(packages=["toolbox"], flatpaks=["toolbox"], modules=["kernel"]), {}),
])
def test_each_kind_matches_its_own_rules_only(message, expected):
    indexed = Matcher(RULES, OWNERSHIP)
    got = {r.user: r.why for r in indexed.match(message, explain=True)}
    assert got == expected
    assert indexed.match(message, explain=True) == \
        ReferenceMatcher(RULES, OWNERSHIP).match(message, explain=True)


def test_owners_of_other_kinds_change_in_place():
    matcher = Matcher(RULES, OWNERSHIP)
    message = record(modules=["nodejs"])
    assert matcher.match(message) == []
    assert matcher.add_owner("modules/nodejs", "user", "bob")
    assert [r.user for r in matcher.match(message)] == ["bob"]
    assert not matcher.add_owner("modules/nodejs", "user", "bob")
    assert matcher.remove_owner("modules/nodejs", "user", "bob")
    assert matcher.match(message) == []
    # A message without the other lists (as before they existed) is still matched.
    assert [r.user for r in matcher.match({"topic": "t", "packages": ["firefox"]})] == ["hal"]


# -- the snapshot -----------------------------------------------------------------------

def test_the_snapshot_keeps_artifact_rules_and_owners():
    users = {"firefox": {"alice"}, "containers/firefox": {"bob"},
             "flatpaks/firefox": {"carol"}}
    groups = {"modules/firefox": {"mod-sig"}, "containers/toolbox": {"desktop-sig"},
              "flatpaks/firefox": {"desktop-sig"}}
    data = encode(RULES, users, groups)
    rules, owners = decode(data, digest(data))
    assert [r.to_dict() for r in rules] == [r.to_dict() for r in RULES]
    assert sorted(owners) == sorted(OWNERSHIP)
    restored = Matcher(rules, sorted(OWNERSHIP))
    for message in (record(containers=["firefox"]), record(flatpaks=["firefox"]),
                    record(containers=["toolbox"])):
        assert restored.match(message, explain=True) == \
            Matcher(RULES, OWNERSHIP).match(message, explain=True)


def test_a_snapshot_from_before_the_artifact_kinds_is_not_used(tmp_path, monkeypatch, caplog):
    """Format 1 kept targets as written: 'rpms/kernel' stayed that string. It is rebuilt
    from the rules, which read it as the package kernel."""
    monkeypatch.delenv(ENV, raising=False)
    assert FORMAT == 2
    caplog.set_level(logging.INFO, "notifier.rules.loading")
    with Store(f"sqlite:///{tmp_path / 'n.db'}") as store:
        doc = {"user": "dave", "name": "k", "track": {"kind": "artifacts-followed",
                                                      "packages": ["rpms/kernel"]},
               "destinations": ["email"]}
        store.upsert_rules([doc])  # as an older version stored it
        seq, mark = rulesnapshot.position(store)
        old = Rule("dave", "k", "artifacts-followed", ("rpms/kernel",),
                   parse_rule(doc, destinations=DESTS).filters, ("email",))
        monkeypatch.setattr("notifier.rules.snapshot.FORMAT", 1)
        data = encode([old], {}, {})
        monkeypatch.undo()
        monkeypatch.delenv(ENV, raising=False)
        rulesnapshot.write(store, rulesnapshot.StoredSnapshot(
            1, seq, mark, ",".join(DESTS), 1, digest(data), time.time(), data))
        matcher = Matcher.from_store(store, destinations=DESTS)
        assert "rules snapshot not used (format 1, this version reads 2)" in caplog.text
        assert [r.user for r in matcher.match(record(packages=["kernel"]))] == ["dave"]
        assert rulesnapshot.read(store).format == 2  # written again, in this format


# -- the preview ------------------------------------------------------------------------

NAMES = ["firefox", "toolbox", "nodejs", "kernel"]
KINDS = ["packages", "containers", "modules", "flatpaks"]


def artifact_history(count: int, now: float, seed: int = 3) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        body = {"text": f"push {i}", "agent": rnd.choice(["alice", "bob", "zed"])}
        for kind in KINDS:
            body[kind] = rnd.sample(NAMES, rnd.choice([0, 0, 0, 1, 2]))
        out.append({"topic": f"org.example.prod.{rnd.choice(['git', 'koji'])}.receive",
                    "msg_id": f"a-{i}", "timestamp": now - rnd.uniform(0, 6 * 86400),
                    "msg": body})
    return out


def fill(store: Store) -> tuple[Describer, float]:
    """The owners above and 400 messages about every kind, described and indexed."""
    config = config_from_dict({"database_url": store.url, "meta": {
        "use_fedmsg_meta": False, "use_fedora_messaging": False,
        "mappings": [{"topic": "org.example.*", "agent_path": "agent", "summary_path": "text",
                      **{f"{kind}_paths": [kind] for kind in KINDS}}]}}, "<test>")
    describer = Describer(config)
    owned: dict[str, dict[str, list[str]]] = {}
    for key, kind, name in OWNERSHIP:
        owned.setdefault(key, {"users": [], "groups": []})[f"{kind}s"].append(name)
    store.apply_ownership(owned)
    now = time.time()
    assert store.store_messages(artifact_history(400, now), describer.describe) == 400
    return describer, now


def assert_previews_equal_the_scan(store: Store, describer: Describer, now: float) -> None:
    """Every rule of :data:`RULES`: the preview finds what describing and matching all finds."""
    preview = RulePreview(store, describer)
    since = now - 7 * 86400
    sizes = {}
    for r in RULES:
        want = [row.msg_id for row, described in scan(store, describer, r, since)
                if described is not None]
        want.reverse()
        assert [m.msg_id for m in preview.matches(r, since, page=9)] == want, r.name
        shown = preview.preview(r, since, limit=4, bound=30)
        assert [m.msg_id for m in shown.matches] == want[:4]
        assert shown.total == min(len(want), 30)
        sizes[r.name] = len(want)
    assert all(sizes.values()), sizes  # every kind's rule finds messages in the mix
    # The package rule finds packages only: never a flatpak or container of that name.
    for m in preview.matches(RULES[5], since):
        assert "firefox" in m.record["packages"]


@pytest.fixture
def history_store(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        describer, now = fill(store)
        yield store, describer, now


@pytest.mark.parametrize("dense", [termquery.DENSE, 3], ids=["gathered", "walked"])
def test_the_preview_of_each_kind_equals_the_full_scan(history_store, monkeypatch, dense):
    monkeypatch.setattr(termquery, "DENSE", dense)
    assert_previews_equal_the_scan(*history_store)
