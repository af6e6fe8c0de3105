"""Containers, modules and flatpaks are described like packages: from schema classes, from
fedora-messaging's header flags, and from ``[[meta.mappings]]``; and written back into the
headers of what notifier publishes on AMQP."""

from __future__ import annotations

import json

import pytest

from notifier.bus.amqp_message import envelope_frames, publication
from notifier.config import config_from_dict
from notifier.meta import Describer

pytest.importorskip("fedora_messaging")

from .distgit_schemas import SCHEMAS, git_hook_push, pagure_push

LISTS = ("packages", "containers", "modules", "flatpaks")


@pytest.fixture(scope="module")
def describer() -> Describer:
    return Describer(config_from_dict({"meta": {"use_fedmsg_meta": False}}), schemas=SCHEMAS)


@pytest.fixture(scope="module")
def plain() -> Describer:
    """What a site without the schema packages knows: the headers alone."""
    return Describer(config_from_dict({"meta": {"use_fedmsg_meta": False,
                                                "use_fedora_messaging": False}}))


def lists(described: dict) -> dict:
    return {key: described[key] for key in LISTS}


@pytest.mark.parametrize(("namespace", "field"), [
    ("rpms", "packages"), ("container", "containers"), ("modules", "modules"),
    ("flatpaks", "flatpaks")])
def test_a_dist_git_push_is_about_the_artifact_its_namespace_says(describer, namespace,
                                                                  field):
    described = describer.describe(git_hook_push(namespace, "toolbox"))
    assert lists(described) == {key: ["toolbox"] if key == field else [] for key in LISTS}
    assert described["app"] == "Git"
    assert described["agent"] == "hedda" and described["usernames"] == ["hedda"]
    assert described["summary"] == (f"hedda pushed to {namespace}/toolbox (rawhide). "
                                    '"Rebase on the new base image"')


def test_pagures_own_push_message_names_its_container(describer):
    described = describer.describe(pagure_push("containers", "fedora-toolbox"))
    assert lists(described) == {"packages": [], "containers": ["fedora-toolbox"],
                                "modules": [], "flatpaks": []}
    assert described["summary"] == ("wanda pushed 2 commits on containers/fedora-toolbox "
                                    "(branch: refs/heads/rawhide)")


def test_the_header_flags_name_every_kind_without_the_schema(plain):
    message = git_hook_push("container", "fedora-toolbox")
    message["headers"].update({
        "fedora_messaging_rpm_kernel": True, "fedora_messaging_container_fedora-toolbox": True,
        "fedora_messaging_container_base-image": True, "fedora_messaging_module_nodejs": True,
        "fedora_messaging_flatpak_org.mozilla.firefox": True,
        "fedora_messaging_flatpak_": True,  # no name: nothing
        "fedora_messaging_module_ruby": False,  # only flags set to true count
        "fedora_messaging_user_hedda": True})
    described = plain.describe(message)
    assert lists(described) == {"packages": ["kernel"],
                                "containers": ["base-image", "fedora-toolbox"],
                                "modules": ["nodejs"], "flatpaks": ["org.mozilla.firefox"]}
    assert described["usernames"] == ["hedda"]


def test_mappings_name_modules_flatpaks_and_containers():
    config = config_from_dict({"meta": {"use_fedmsg_meta": False, "mappings": [
        {"topic": "*.mbs.module.state.change", "app": "mbs",
         "summary": "module {name}:{stream} is {state_name}", "modules_paths": ["name"],
         "usernames_paths": ["owner"]},
        {"topic": "*.flatpak.build.*", "flatpaks_paths": ["flatpaks.id"],
         "containers_paths": ["base_images"], "packages_paths": ["rpms"]},
    ]}})
    describer = Describer(config, schemas={})
    module = describer.describe({"topic": "org.fedoraproject.prod.mbs.module.state.change",
                                 "msg": {"name": "nodejs", "stream": "18", "owner": "mbs-bot",
                                         "state_name": "ready"}})
    assert module["modules"] == ["nodejs"] and module["summary"] == "module nodejs:18 is ready"
    assert module["packages"] == module["containers"] == module["flatpaks"] == []
    flatpak = describer.describe({"topic": "org.example.prod.flatpak.build.done", "msg": {
        "flatpaks": [{"id": "org.gnome.Maps"}, {"id": "org.gnome.Weather"}],
        "base_images": ["flatpak-runtime"], "rpms": ["gnome-maps"]}})
    assert lists(flatpak) == {"packages": ["gnome-maps"], "containers": ["flatpak-runtime"],
                              "modules": [], "flatpaks": ["org.gnome.Maps", "org.gnome.Weather"]}


def test_published_headers_carry_every_kind_and_read_back(describer, plain):
    """notifier -> AMQP: the flags fedora-messaging writes; AMQP -> notifier: the same lists,
    read by a receiver that has no schema class, from the flags alone."""
    sent = git_hook_push("modules", "nodejs")
    envelope = {"topic": sent["topic"], "msg": sent["body"], "msg_id": sent["id"],
                "timestamp": 1796034151}

    def describe(message: dict) -> dict:
        described = describer.describe_for_headers(message)
        described["flatpaks"] = ["org.gnome.Maps"]  # a message about several kinds at once
        described["containers"] = ["fedora-toolbox"]
        described["packages"] = ["nodejs"]
        return described

    out = publication(sent["topic"].encode(), json.dumps(envelope).encode(),
                      schema="base.message", describe=describe)
    flags = {key for key, value in out.headers.items() if value is True}
    assert flags == {"fedora_messaging_user_hedda", "fedora_messaging_rpm_nodejs",
                     "fedora_messaging_container_fedora-toolbox",
                     "fedora_messaging_module_nodejs",
                     "fedora_messaging_flatpak_org.gnome.Maps"}
    assert out.headers["fedora_messaging_schema"] == "fedora_messaging_git_hook.commit.v1"
    topic, frame = envelope_frames(out.routing_key, out.body, out.message_id, out.headers)
    received = json.loads(frame)
    assert received["headers"] == out.headers
    assert lists(plain.describe(received)) == {
        "packages": ["nodejs"], "containers": ["fedora-toolbox"], "modules": ["nodejs"],
        "flatpaks": ["org.gnome.Maps"]}
    # With the schema class, the receiver describes it as the sender did.
    assert describer.describe(received)["modules"] == ["nodejs"]
