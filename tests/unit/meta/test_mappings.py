from __future__ import annotations

import pytest

from notifier.config import MetaMapping, config_from_dict
from notifier.errors import ConfigError
from notifier.meta.mappings import MappingSource, parse_path, parse_template, render, resolve

BUILD = {"build": {"owner": "ada", "nvr": "hello-2.12-1.fc41", "url": "https://ci.example/b/9",
                   "watchers": ["bob", "cy"], "rpms": [{"name": "hello"}, {"name": "hello-doc"},
                                                       {"arch": "noarch"}],
                   "tags": [["f41", "f41-updates"], ["f42"]], "attempt": 2, "ok": True}}


@pytest.mark.parametrize(("path", "expected"), [
    ("build.owner", ["ada"]),
    ("build.watchers", ["bob", "cy"]),
    ("build.rpms.name", ["hello", "hello-doc"]),
    ("build.rpms.1.name", ["hello-doc"]),
    ("build.rpms.7.name", []),
    ("build.tags", ["f41", "f41-updates", "f42"]),
    ("build.attempt", [2]),
    ("build.rpms", []),  # dicts are not values
    ("build.missing", []),
    ("nothing.at.all", []),
])
def test_paths_follow_dicts_and_lists(path, expected):
    assert resolve(BUILD, parse_path(path)) == expected


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a."])
def test_a_path_needs_every_segment(bad):
    with pytest.raises(ValueError, match="dotted path"):
        parse_path(bad)


def test_templates_fill_placeholders_and_keep_escaped_braces():
    template = parse_template("{build.owner} built {build.nvr} {{ok}} for {build.watchers}")
    assert render(template, BUILD) == "ada built hello-2.12-1.fc41 {ok} for bob, cy"
    assert render(parse_template("attempt {build.attempt}, ok={build.ok}"), BUILD) == \
        "attempt 2, ok=true"
    assert render(parse_template("{build.nobody} built it"), BUILD) is None


@pytest.mark.parametrize("bad", ["{build.owner", "owner}", "{}", "{a..b}"])
def test_malformed_templates_are_refused(bad):
    with pytest.raises(ValueError):
        parse_template(bad)


def _source(**fields):
    return MappingSource([MetaMapping(**fields)], "/etc/notifier/notifier.toml")


def test_a_mapping_describes_its_topics_only():
    source = _source(topic="org.example.*.ci.build.*", app="ci", icon="https://ci.example/i.png",
                     summary="{build.owner} built {build.nvr}", link_path="build.url",
                     agent_path="build.owner", usernames_paths=("build.owner", "build.watchers"),
                     packages_paths=("build.rpms.name",), groups_paths=("build.team",),
                     severity="warning")
    found = source.describe({"topic": "org.example.prod.ci.build.done", "msg": BUILD})
    assert found is not None and not found.understood
    assert found.fields == {
        "app": "ci", "icon": "https://ci.example/i.png", "severity": "warning",
        "summary": "ada built hello-2.12-1.fc41", "link": "https://ci.example/b/9",
        "agent": "ada", "usernames": ["ada", "bob", "cy"],
        "packages": ["hello", "hello-doc"]}
    assert source.describe({"topic": "org.example.prod.ci.test.done", "msg": BUILD}) is None


def test_summary_path_stands_in_when_the_template_finds_nothing():
    source = _source(topic="*", summary="{build.who} did it", summary_path="build.nvr")
    assert source.describe({"topic": "x", "msg": BUILD}).fields == {
        "summary": "hello-2.12-1.fc41"}


def test_several_mappings_fill_each_others_gaps_in_order():
    source = MappingSource([MetaMapping(topic="ci.*", summary_path="build.nvr"),
                            MetaMapping(topic="ci.build.*", app="ci", summary="ignored")])
    assert source.describe({"topic": "ci.build.x", "msg": BUILD}).fields == {
        "summary": "hello-2.12-1.fc41", "app": "ci"}


def test_bad_mappings_are_config_errors_that_say_where():
    with pytest.raises(ConfigError, match=r"notifier.toml: meta.mappings\[0\].severity: "
                                          r"'loud' is not one of debug, info, warning, error"):
        _source(topic="ci.*", severity="loud")
    with pytest.raises(ConfigError, match=r"meta.mappings\[0\].packages_paths\[1\]: 'a\.\.b'"):
        _source(topic="ci.*", packages_paths=("ok", "a..b"))
    with pytest.raises(ConfigError, match=r"meta.mappings\[0\].summary: unmatched '\{'.*"
                                          r"topic 'ci.\*'"):
        _source(topic="ci.*", summary="{oops")


def test_mappings_load_from_a_config_table():
    config = config_from_dict({"meta": {"mappings": [
        {"topic": "ci.*", "app": "ci", "usernames_paths": ["build.owner"]}]}})
    source = MappingSource(config.meta.mappings)
    assert source.describe({"topic": "ci.x", "msg": BUILD}).fields == {
        "app": "ci", "usernames": ["ada"]}
    assert not MappingSource(())
