"""Artifact keys, and ownership files of all four kinds (packages, containers, modules,
flatpaks) in the shapes dist-git gives them."""

from __future__ import annotations

import pytest

from notifier.errors import InputError
from notifier.users import artifacts
from notifier.users.ownership import (
    check_ownership_file,
    check_packages,
    ownership_pairs,
    passed_over,
)


@pytest.mark.parametrize(("written", "key"), [
    ("kernel", "kernel"),
    ("rpms/kernel", "kernel"),
    ("rpm/kernel", "kernel"),
    ("package/kernel", "kernel"),
    ("containers/fedora-toolbox", "containers/fedora-toolbox"),
    ("container/fedora-toolbox", "containers/fedora-toolbox"),  # dist-git's namespace
    ("modules/nodejs", "modules/nodejs"),
    ("module/nodejs", "modules/nodejs"),
    ("flatpaks/firefox", "flatpaks/firefox"),
    ("flatpak/firefox", "flatpaks/firefox"),
])
def test_every_spelling_reads_as_its_key(written: str, key: str) -> None:
    assert artifacts.parse(written) == key


@pytest.mark.parametrize(("written", "message"), [
    ("conatiners/toolbox", "unknown artifact kind 'conatiners' (did you mean 'containers'?); "
                           "one of: rpms, containers, modules, flatpaks"),
    ("flatpack/firefox", "did you mean 'flatpak'?"),
    ("forks/alice/thing", "unknown artifact kind 'forks'"),
    ("containers/", "'containers/' names no container: write containers/NAME"),
    ("modules/nodejs/18", "names no module"),
    ("rpms/ ", "names no package"),
])
def test_a_bad_kind_or_name_is_refused_with_the_nearest_kind(written: str,
                                                              message: str) -> None:
    with pytest.raises(ValueError) as caught:
        artifacts.parse(written)
    assert message in str(caught.value)


def test_keys_split_and_read_back() -> None:
    for kind, name in [("rpms", "kernel"), ("containers", "toolbox"), ("modules", "nodejs"),
                       ("flatpaks", "firefox")]:
        key = artifacts.key(kind, name)
        assert artifacts.split(key) == (kind, name)
        assert artifacts.parse(key) == key
    assert artifacts.key("rpms", "kernel") == "kernel"  # as packages were always kept
    assert artifacts.label("kernel") == "package 'kernel'"
    assert artifacts.label("containers/toolbox") == "container 'toolbox'"
    assert artifacts.label("flatpaks/firefox") == "flatpak 'firefox'"


def test_a_record_lists_its_artifacts_by_key() -> None:
    record = {"packages": ["firefox", "kernel"], "containers": ["toolbox"],
              "modules": ["nodejs"], "flatpaks": ["firefox"]}
    assert list(artifacts.record_keys(record)) == [
        "firefox", "kernel", "containers/toolbox", "modules/nodejs", "flatpaks/firefox"]
    assert list(artifacts.record_keys({"packages": ["kernel"]})) == ["kernel"]
    assert list(artifacts.record_keys({})) == []


def test_an_ownership_file_of_all_four_kinds() -> None:
    owned = check_ownership_file({
        "packages": {"kernel": {"users": ["alice"], "groups": ["kernel-maint"]}},
        "containers": {"fedora-toolbox": {"users": ["bob", "alice", "bob"]}},
        "modules": {"nodejs": {"groups": ["nodejs-sig"]}},
        "flatpaks": {"firefox": {"users": ["carol"]}},
    }, "o.json")
    assert owned == {
        "kernel": {"users": ["alice"], "groups": ["kernel-maint"]},
        "containers/fedora-toolbox": {"users": ["alice", "bob"], "groups": []},
        "modules/nodejs": {"users": [], "groups": ["nodejs-sig"]},
        "flatpaks/firefox": {"users": ["carol"], "groups": []},
    }
    assert ownership_pairs(owned) == {
        ("kernel", "user", "alice"), ("kernel", "group", "kernel-maint"),
        ("containers/fedora-toolbox", "user", "alice"),
        ("containers/fedora-toolbox", "user", "bob"),
        ("modules/nodejs", "group", "nodejs-sig"), ("flatpaks/firefox", "user", "carol")}


def test_dist_gits_namespaces_and_owner_lists() -> None:
    # The layout of dist-git's owner alias file: a namespace, a name, its owners, '@' groups.
    owned = check_ownership_file({
        "rpms": {"kernel": ["alice", "@kernel-maint"], "gcc": []},
        "container": {"fedora-toolbox": ["bob"]},
        "modules": {"nodejs": ["@nodejs-sig", "carol"]},
        "flatpaks": {"firefox": ["dave", "dave"]},
    }, "pagure_owner_alias.json")
    assert owned == {
        "kernel": {"users": ["alice"], "groups": ["kernel-maint"]},
        "gcc": {"users": [], "groups": []},
        "containers/fedora-toolbox": {"users": ["bob"], "groups": []},
        "modules/nodejs": {"users": ["carol"], "groups": ["nodejs-sig"]},
        "flatpaks/firefox": {"users": ["dave"], "groups": []},
    }


def test_dist_gits_tests_namespace_is_passed_over_not_refused() -> None:
    data = {"rpms": {"kernel": ["alice"]}, "tests": {"kernel": ["bob"]}}
    assert check_ownership_file(data, "o.json") == {
        "kernel": {"users": ["alice"], "groups": []}}
    assert passed_over(data) == ["tests"]
    with pytest.raises(InputError, match=r"o\.json: missing the 'packages' object"):
        check_ownership_file({"tests": {"kernel": ["bob"]}}, "o.json")


def test_a_file_of_one_other_kind_alone_is_read() -> None:
    assert check_ownership_file({"containers": {"x": {"users": ["a"]}}}, "o.json") == {
        "containers/x": {"users": ["a"], "groups": []}}


@pytest.mark.parametrize(("data", "message"), [
    ({"containres": {}}, r"o\.json: unknown key 'containres' \(did you mean 'containers'\?\) "
                         r"at the top level; one of: packages, containers, modules, flatpaks"),
    ({"containers": []}, r"'containers' must be an object mapping container names"),
    ({"containers": {"a/b": {}}}, r"container 'a/b': not a valid container name"),
    ({"modules": {"m": ["@"]}}, r"module 'm': a list of owners must hold non-empty names"),
    ({"flatpaks": {"f": {"user": ["x"]}}}, r"flatpak 'f': unknown key 'user' "
                                           r"\(did you mean 'users'\?\)"),
    ({"packages": {"k": {}}, "rpms": {"k": []}},
     r"package 'k': listed twice, under 'packages' and 'rpms'"),
    ({"container": {"t": []}, "containers": {"t": []}}, r"container 't': listed twice"),
])
def test_bad_ownership_files_name_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_ownership_file(data, "o.json")


def test_owners_given_by_artifact_name() -> None:
    assert check_packages({"rpms/kernel": {"users": ["a"]},
                           "container/toolbox": ["@g"]}) == {
        "kernel": {"users": ["a"], "groups": []},
        "containers/toolbox": {"users": [], "groups": ["g"]}}
    with pytest.raises(InputError, match=r"package 'contaners/x': unknown artifact kind "
                                         r"'contaners' \(did you mean 'containers'\?\)"):
        check_packages({"contaners/x": {}})
    with pytest.raises(InputError, match="listed twice"):
        check_packages({"kernel": {}, "rpms/kernel": {}})
