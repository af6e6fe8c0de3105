from __future__ import annotations

import copy
import json
import logging
import socket

import pytest

from notifier.config import config_from_dict
from notifier.errors import InputError
from notifier.meta import FIELDS, Describer, derived_msg_id

from . import samples


@pytest.fixture(scope="module")
def describer():
    return Describer(config_from_dict({}))


@pytest.fixture(scope="module")
def plain():
    return Describer(config_from_dict({"meta": {"use_fedmsg_meta": False,
                                                "use_fedora_messaging": False}}))


def test_every_description_has_exactly_the_documented_keys(describer):
    for message in [*samples.REALISTIC, samples.TASKOTRON_UPDATE_RESULT]:
        described = describer.describe(copy.deepcopy(message))
        assert tuple(described) == FIELDS
        assert described["severity"] in ("debug", "info", "warning", "error")
        assert described["summary"] and described["app"]
        for key in ("usernames", "packages", "containers", "modules", "flatpaks", "groups"):
            assert described[key] == sorted(described[key])
        json.dumps(described)


def test_describing_leaves_the_message_alone(describer):
    message = copy.deepcopy(samples.BODHI_COMMENT)
    describer.describe(message)
    assert message == samples.BODHI_COMMENT


def test_a_fedmsg_message(describer):
    assert describer.describe(samples.KOJI_BUILD_FAILED) == {
        "msg_id": "2024-7e7e7e7e-aaaa-4bbb-8ccc-dddddddddddd",
        "topic": "org.fedoraproject.prod.buildsys.build.state.change",
        "app": "buildsys",
        "summary": "ignatius's python-click-8.1.7-3.fc41 failed to build",
        "link": "http://koji.fedoraproject.org/koji/buildinfo?buildID=2456789",
        "icon": "https://fedoraproject.org/w/uploads/2/20/"
                "Artwork_DesignService_koji-icon-48.png",
        "usernames": ["ignatius"], "agent": "ignatius", "packages": ["python-click"],
        "containers": [], "modules": [], "flatpaks": [], "groups": [], "severity": "info"}


def test_a_fedora_messaging_record(describer, plain):
    described = describer.describe(samples.RECORDED_COPR)
    assert described["msg_id"] == "6f0e8c5e-6a4b-4b8e-9f57-0c9d1c0de001"
    assert described["app"] == "copr"
    assert "click-nightly" in described["summary"]
    assert described["usernames"] == ["frida"]
    # Without fedmsg.meta the headers still say who and what.
    described = plain.describe(samples.RECORDED_COPR)
    assert described["usernames"] == ["frida"]
    assert described["packages"] == ["python-click"]
    assert described["summary"] == "copr.build.end: " + json.dumps(
        samples.RECORDED_COPR["body"], sort_keys=True, separators=(",", ":"))
    assert described["severity"] == "info"


def test_the_severity_header_counts_when_no_source_says(plain):
    message = dict(samples.RECORDED_COPR,
                   headers={"fedora_messaging_severity": 40, "fedora_messaging_group_infra": True})
    described = plain.describe(message)
    assert described["severity"] == "error"
    assert described["groups"] == ["infra"]


def test_the_log_form_has_its_text_as_summary(describer, plain):
    for d in (describer, plain):
        described = d.describe(samples.LOG_LINE)
        assert described["summary"] == "Rebooting proxy01 for the kernel update"
        assert described["app"] == "logger"
        assert described["agent"] == "olga" and described["usernames"] == ["olga"]
    bare_log = describer.describe({"topic": "org.example.prod.backup.done",
                                   "msg": {"log": "  backup of db01: 3 GiB  "}})
    assert bare_log["summary"] == "  backup of db01: 3 GiB  "
    assert bare_log["app"] == "backup"
    assert bare_log["usernames"] == [] and bare_log["agent"] is None


def test_a_message_nobody_understands(describer):
    described = describer.describe(samples.BARE)
    assert described == {
        "msg_id": derived_msg_id(samples.BARE), "topic": "org.example.prod.ci.pipeline.complete",
        "app": "ci", "summary": 'ci.pipeline.complete: {"pipeline":42,"result":"success"}',
        "link": None, "icon": None, "usernames": [], "agent": None, "packages": [],
        "containers": [], "modules": [], "flatpaks": [], "groups": [], "severity": "info"}
    assert describer.describe(copy.deepcopy(samples.BARE))["msg_id"] == described["msg_id"]


@pytest.mark.parametrize(("body", "summary"), [
    ({"title": "Release 2.0 is out", "x": 1}, "Release 2.0 is out"),
    ("line one\nline two", "line one"),
    (None, "ci.done"),
    ({}, "ci.done"),
    ({"n": 10 ** 30}, 'ci.done: {"n":' + str(10 ** 30) + "}"),
    ({"text": "x" * 300}, "x" * 199 + "…"),
])
def test_generic_summaries(plain, body, summary):
    assert plain.describe({"topic": "ci.done", "msg": body})["summary"] == summary


def test_mappings_come_first_and_others_fill_the_gaps(tmp_path):
    config = config_from_dict({"meta": {"mappings": [{
        "topic": "org.fedoraproject.*.bodhi.update.comment",
        "summary": "{comment.author} on {comment.update.alias}",
        "severity": "warning", "groups_paths": ["comment.update.groups"]}]}},
        str(tmp_path / "notifier.toml"))
    described = Describer(config).describe(samples.BODHI_COMMENT)
    assert described["summary"] == "marta on FEDORA-2024-1a2b3c4d5e"
    assert described["severity"] == "warning"
    # From fedmsg.meta:
    assert described["packages"] == ["rust-ripgrep"]
    assert described["link"].endswith("FEDORA-2024-1a2b3c4d5e")
    assert described["groups"] == []


def test_sources_can_be_switched_off(plain):
    assert plain.sources == ("log", "generic")
    described = plain.describe(samples.BODHI_COMMENT)
    assert described["app"] == "bodhi"
    assert described["summary"].startswith("bodhi.update.comment: {")
    assert described["packages"] == []


def test_not_a_message(describer):
    with pytest.raises(InputError, match="no 'topic'"):
        describer.describe({"msg": {}})


def test_no_network_connection_is_attempted(monkeypatch, caplog):
    """Describing a batch of real-world messages touches no socket at all.

    Any connection or name lookup that escapes the describer's own guard
    fails this test; those the guard stops are logged, and only Taskotron's
    processor (which fetches the Bodhi update) makes one.
    """
    attempts = []

    def refuse_connect(sock, address):
        attempts.append(("connect", address))
        raise AssertionError(f"connect to {address!r}")

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(("getaddrinfo", host))
        raise AssertionError(f"lookup of {host!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket, "gethostbyname", refuse_lookup)
    caplog.set_level(logging.WARNING)
    describer = Describer(config_from_dict({}))
    batch = [*samples.REALISTIC, samples.TASKOTRON_UPDATE_RESULT] * 3
    described = [describer.describe(copy.deepcopy(m)) for m in batch]
    assert len(described) == len(batch)
    assert attempts == []
    blocked = [r.getMessage() for r in caplog.records if "tried to reach the network" in
               r.getMessage()]
    assert len(blocked) == 3
    assert all("taskotron" in m and "look up 'bodhi.fedoraproject.org'" in m for m in blocked)
    assert socket.socket.connect is refuse_connect
