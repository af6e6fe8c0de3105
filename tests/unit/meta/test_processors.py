from __future__ import annotations

import copy

import pytest

from notifier.config import config_from_dict
from notifier.meta.processors import ProcessorSource, processor_config

from . import samples

pytest.importorskip("fedmsg_meta_fedora_infrastructure")


@pytest.fixture(scope="module")
def source():
    return ProcessorSource(config_from_dict({}))


def test_the_config_has_no_credentials_for_user_lookups():
    config = processor_config(config_from_dict({"topic_prefix": "org.example",
                                                "environment": "stg"}))
    assert config["fasjson"] is False
    assert not {"fas_credentials", "fasjson_credentials"} & set(config)
    assert config["topic_prefix_re"] == r"org\.example\.[^\W\d_]+"


def test_a_bodhi_comment(source):
    found = source.describe(samples.BODHI_COMMENT)
    assert found.understood
    assert found.fields["app"] == "bodhi"
    assert found.fields["summary"] == ("marta commented on bodhi update "
                                       "rust-ripgrep-14.1.0-1.fc40 (karma: 1)")
    assert found.fields["link"] == \
        "https://bodhi.fedoraproject.org/updates/FEDORA-2024-1a2b3c4d5e"
    assert found.fields["usernames"] == {"marta"}
    assert found.fields["agent"] == "marta"
    assert found.fields["packages"] == {"rust-ripgrep"}


def test_a_koji_build_state_change(source):
    fields = source.describe(samples.KOJI_BUILD_FAILED).fields
    assert fields["app"] == "buildsys"
    assert fields["summary"] == "ignatius's python-click-8.1.7-3.fc41 failed to build"
    assert fields["link"] == "http://koji.fedoraproject.org/koji/buildinfo?buildID=2456789"
    assert fields["usernames"] == {"ignatius"}
    assert fields["packages"] == {"python-click"}


def test_a_dist_git_push(source):
    fields = source.describe(samples.DISTGIT_PUSH).fields
    assert fields["app"] == "git"
    assert fields["summary"].startswith("hedda pushed to rpms/python-click (rawhide).")
    assert fields["link"] == ("https://src.fedoraproject.org/rpms/python-click/c/"
                              "0123456789abcdef0123456789abcdef01234567?branch=rawhide")
    assert fields["agent"] == "hedda"
    assert fields["packages"] == {"python-click"}


def test_a_pagure_push_under_its_own_prefix(source):
    fields = source.describe(samples.PAGURE_PUSH).fields
    assert fields["app"] == "pagure"
    assert fields["summary"] == "wanda pushed 2 commits to fedora-notes (main)"
    assert fields["usernames"] == {"wanda"}


def test_a_topic_no_processor_handles(source):
    assert source.processor_for(samples.BARE) is None
    assert source.describe(samples.BARE) is None


def test_the_processor_is_looked_up_once_per_topic(source):
    first = source.processor_for(samples.KOJI_BUILD_FAILED)
    assert first is source.processor_for(dict(samples.KOJI_BUILD_FAILED, msg={}))
    assert source._topic_cache[samples.KOJI_BUILD_FAILED["topic"]] is first


def test_a_body_the_processor_does_not_expect_is_not_understood(source):
    broken = dict(samples.KOJI_BUILD_FAILED, msg={"build_id": 1})
    found = source.describe(broken)
    assert found is not None and not found.understood
    assert found.fields["app"] == "buildsys"
    assert "summary" not in found.fields


@pytest.mark.parametrize(("namespace", "field"), [
    ("container", "containers"), ("modules", "modules"), ("flatpaks", "flatpaks")])
def test_a_fedmsg_push_to_another_dist_git_namespace_names_its_artifact(source, namespace,
                                                                        field):
    message = copy.deepcopy(samples.DISTGIT_PUSH)
    message["msg"]["commit"]["namespace"] = namespace
    found = source.describe(message)
    assert found.understood
    assert found.fields["summary"].startswith(f"hedda pushed to {namespace}/python-click")
    assert not found.fields["packages"]  # fedmsg.meta: not a package
    assert found.fields[field] == ["python-click"]
    assert {"containers", "modules", "flatpaks"} & set(found.fields) == {field}


def test_a_fedmsg_push_to_rpms_is_a_package_only(source):
    found = source.describe(samples.DISTGIT_PUSH)
    assert found.fields["packages"] == {"python-click"}
    assert not {"containers", "modules", "flatpaks"} & set(found.fields)
    odd = copy.deepcopy(samples.DISTGIT_PUSH)
    odd["msg"]["commit"]["namespace"] = ["container"]  # not a namespace: nothing more said
    assert not {"containers", "modules", "flatpaks"} & set(source.describe(odd).fields)
