from __future__ import annotations

import logging

import pytest

from notifier.config import config_from_dict
from notifier.meta import Describer
from notifier.meta.schemas import SchemaSource, installed_schemas, schemas_installed

pytest.importorskip("fedora_messaging")

from . import ci_schemas

FINISHED = {"id": 9, "owner": "ada", "nvr": "hello-2.12-1.fc41", "result": "failed",
            "watchers": ["cy", "bob"]}


def record(topic, body, **headers):
    return {"topic": topic, "body": body, "id": "d6f0c1f0-0000-4000-8000-000000000001",
            "headers": headers, "queue": None, "priority": 0}


@pytest.fixture(scope="module")
def source():
    return SchemaSource(ci_schemas.SCHEMAS)


@pytest.fixture(scope="module")
def describer():
    return Describer(config_from_dict({"meta": {"use_fedmsg_meta": False}}),
                     schemas=ci_schemas.SCHEMAS)


def test_the_schema_header_chooses_the_class(source):
    headers = {"fedora_messaging_schema": "ci.build.finished.v1"}
    assert source.schema_for("anything.at.all", headers) is ci_schemas.BuildFinished
    assert source.schema_for("ci.build.finished", {}) is ci_schemas.BuildFinished


def test_the_topic_chooses_the_class_after_any_prefix(source):
    assert source.schema_for("org.example.prod.ci.build.finished", None) is \
        ci_schemas.BuildFinished
    assert source.schema_for("org.example.prod.ci.build.started", None) is None
    # An unknown schema name falls back to the topic.
    assert source.schema_for("ci.build.queued", {"fedora_messaging_schema": "gone.v9"}) is \
        ci_schemas.BuildQueued


def test_the_base_class_describes_nothing(source):
    assert source.schema_for("ci.build.finished", {"fedora_messaging_schema": "base.message"}) \
        is None
    assert source.describe({"topic": "ci.x", "msg": {}, "msg_id": "1", "timestamp": None,
                            "headers": {"fedora_messaging_schema": "base.message"}}) is None


def test_a_schema_class_describes_its_message(describer):
    described = describer.describe(record("org.example.prod.ci.build.finished", FINISHED,
                                          fedora_messaging_schema="ci.build.finished.v1",
                                          fedora_messaging_severity=30))
    assert described == {
        "msg_id": "d6f0c1f0-0000-4000-8000-000000000001",
        "topic": "org.example.prod.ci.build.finished",
        "app": "ci", "summary": "ada built hello-2.12-1.fc41: failed",
        "link": "https://ci.example/builds/9", "icon": "https://ci.example/icon.png",
        "usernames": ["ada", "bob", "cy"], "agent": "ada", "packages": ["hello"],
        "containers": [], "modules": [], "flatpaks": [], "groups": ["ci-admins"],
        "severity": "warning"}


def test_the_class_severity_applies_without_a_header(describer):
    described = describer.describe({"topic": "ci.build.queued", "msg": {"nvr": "x-1-1"}})
    assert described["severity"] == "warning"
    assert described["app"] == "ci"
    # Its summary is the base one (the topic): the generic summary is better.
    assert described["summary"] == 'ci.build.queued: {"nvr":"x-1-1"}'
    assert described["usernames"] == []


def test_a_class_that_fails_falls_through_to_the_next_source(describer, caplog):
    caplog.set_level(logging.WARNING, logger="notifier.meta")
    described = describer.describe({"topic": "ci.build.broken", "msg": {"text": "disk full"},
                                    "msg_id": "2024-1", "timestamp": 1})
    assert described["summary"] == "disk full"
    assert described["app"] == "ci"
    assert described["severity"] == "info"
    assert "fedora-messaging could not describe 2024-1 on ci.build.broken" in caplog.text
    assert "KeyError('owner')" in caplog.text


def test_installed_schemas_come_from_the_entry_point():
    from fedora_messaging.message import Message

    installed = installed_schemas()
    assert installed["base.message"] is Message
    assert schemas_installed() == (len(installed) > 1)
    assert not SchemaSource({"base.message": Message})
