"""``notifier owners``, ``rules`` and ``match`` with containers, modules and flatpaks.

The owners come in dist-git's layout (its four namespaces, '@' groups); the messages are
fedora-messaging record lines with the filter headers fedora-messaging publishes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.clirun import notifier

pytestmark = pytest.mark.integration

DIST_GIT_OWNERS = {
    "rpms": {"firefox": ["alice"], "kernel": ["alice", "@kernel-maint"]},
    "container": {"fedora-toolbox": ["bob", "@container-sig"]},
    "modules": {"nodejs": ["carol"]},
    "flatpaks": {"firefox": ["@flatpak-sig", "dave"]},
    "tests": {"kernel": ["alice"]},  # dist-git's test repositories: no artifact kind
}


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "n.db"}"\n'
                    "[meta]\nuse_fedmsg_meta = false\nuse_fedora_messaging = false\n")
    return path


def write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def pushed(kind: str, name: str, agent: str = "erin") -> dict[str, Any]:
    """A push to dist-git as ``fedora-messaging record`` writes it, the flags included."""
    return {"topic": "org.fedoraproject.prod.git.receive", "id": f"push-{kind}-{name}",
            "headers": {"fedora_messaging_schema": "fedora_messaging_git_hook.commit.v1",
                        "fedora_messaging_severity": 20, f"fedora_messaging_user_{agent}": True,
                        f"fedora_messaging_{kind}_{name}": True},
            "body": {"agent": agent, "commit": {"repo": name, "summary": "update"}},
            "queue": None, "priority": 0}


def test_owners_of_all_four_namespaces(conf: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "owner_alias.json", DIST_GIT_OWNERS)
    out = notifier(conf, "owners", "import", path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (f"{path}: 2 packages, 1 containers, 1 modules, 1 flatpaks, "
                          "8 owners added, 0 removed\n")
    assert f"{path}: 'tests' passed over (dist-git's tests namespace" in out.stderr
    assert notifier(conf, "owners", "list").stdout == (
        "containers/fedora-toolbox group container-sig\n"
        "containers/fedora-toolbox user bob\n"
        "firefox user alice\n"
        "flatpaks/firefox group flatpak-sig\n"
        "flatpaks/firefox user dave\n"
        "kernel group kernel-maint\n"
        "kernel user alice\n"
        "modules/nodejs user carol\n")
    for spelled in ("container/fedora-toolbox", "containers/fedora-toolbox"):
        listed = notifier(conf, "owners", "list", "--json", "--package", spelled).stdout
        assert [json.loads(line) for line in listed.splitlines()] == [
            {"package": "containers/fedora-toolbox", "kind": "group", "name": "container-sig"},
            {"package": "containers/fedora-toolbox", "kind": "user", "name": "bob"}]
    # Only the flatpak changes hands; the package of the same name keeps its owner.
    update = write(tmp_path / "update.json", {"flatpaks": {"firefox": {"users": ["erin"]}}})
    out = notifier(conf, "owners", "import", update, "-v")
    assert out.stdout == ("- flatpaks/firefox group flatpak-sig\n"
                          "- flatpaks/firefox user dave\n"
                          "+ flatpaks/firefox user erin\n"
                          f"{update}: 0 packages, 1 flatpaks, 1 owners added, 2 removed\n")
    assert "firefox user alice\n" in notifier(conf, "owners", "list").stdout

    bad = write(tmp_path / "bad.json", {"containres": {"x": []}})
    out = notifier(conf, "owners", "import", bad)
    assert out.returncode == 1
    assert "unknown key 'containres' (did you mean 'containers'?)" in out.stderr
    out = notifier(conf, "owners", "list", "--package", "flatpack/firefox")
    assert out.returncode == 2
    assert "unknown artifact kind 'flatpack' (did you mean 'flatpak'?)" in out.stderr


def test_rules_on_each_kind_match_their_messages(conf: Path, tmp_path: Path) -> None:
    assert notifier(conf, "owners", "import",
                    write(tmp_path / "o.json", DIST_GIT_OWNERS)).returncode == 0
    rules = [
        {"user": "bob", "name": "mine", "track": {"kind": "artifacts-owned"},
         "destinations": ["email"]},
        {"user": "frank", "name": "flatpaks", "track": {"kind": "artifacts-group-owned",
                                                        "groups": ["flatpak-sig"]},
         "destinations": ["email"]},
    ]
    out = notifier(conf, "rules", "import", write(tmp_path / "rules.json", rules))
    assert out.returncode == 0, out.stderr
    out = notifier(conf, "rules", "add", "gina", "modules", "--track", "artifacts-followed",
                   "--target", "module/nodejs", "--target", "rpms/kernel",
                   "--destination", "email")
    assert out.returncode == 0, out.stderr
    shown = json.loads(notifier(conf, "rules", "show", "gina", "modules").stdout)
    assert shown["track"] == {"kind": "artifacts-followed",
                              "packages": ["kernel", "modules/nodejs"]}
    out = notifier(conf, "rules", "add", "gina", "typo", "--track", "artifacts-followed",
                   "--target", "contaner/x", "--destination", "email")
    assert out.returncode != 0
    assert "unknown artifact kind 'contaner' (did you mean 'container'?)" in out.stderr

    messages = [pushed("container", "fedora-toolbox"), pushed("flatpak", "firefox"),
                pushed("module", "nodejs"), pushed("rpm", "fedora-toolbox")]
    out = notifier(conf, "match", "--explain",
                   input="".join(json.dumps(m) + "\n" for m in messages))
    assert out.returncode == 0, out.stderr
    got = {line["msg_id"]: {r["user"]: r["why"] for r in line["recipients"]}
           for line in map(json.loads, out.stdout.splitlines())}
    assert got == {
        "push-container-fedora-toolbox": {
            "bob": {"mine": "container 'fedora-toolbox' is owned by bob"}},
        "push-flatpak-firefox": {
            "frank": {"flatpaks": "flatpak 'firefox' is owned by group 'flatpak-sig'"}},
        "push-module-nodejs": {"gina": {"modules": "module 'nodejs' is followed"}},
        # a package of that name is not the container
        "push-rpm-fedora-toolbox": {},
    }
