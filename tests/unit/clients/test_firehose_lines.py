"""The firehose's lines, filters and queue, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.clients.firehose.filters import ChannelFilter
from notifier.clients.firehose.lines import (
    MAX_TEXT_BYTES,
    Colours,
    Fold,
    message_line,
    summary_of,
)
from notifier.clients.firehose.queue import ChannelQueue, Single
from notifier.config import FirehoseFilter

PREFIX = "org.fedoraproject.prod."


def record(app: str = "koji", topic: str = "buildsys.tag", summary: str | None = "tagged",
           **extra: Any) -> dict[str, Any]:
    return {"app": app, "topic": PREFIX + topic, "summary": summary, "link": None,
            "agent": None, "usernames": [], "packages": [], "severity": "info", **extra}


def test_colours_are_stable_and_configurable() -> None:
    colours = Colours(["bodhi=red", "copr=12"])
    assert colours.of("bodhi") == 4 and colours.of("COPR") == 12
    # the default mapping depends on the name only: the same in every process
    assert Colours().of("koji") == Colours(["bodhi=red"]).of("koji") == 2
    assert len({Colours().of(a) for a in ("koji", "bodhi", "copr", "pagure", "fas")}) > 2


def test_the_line_is_app_summary_link_in_colour_or_plain() -> None:
    r = record(link="https://koji.example/b/1")
    assert message_line(r, Colours(), True) == "\x0302[koji]\x03 tagged https://koji.example/b/1"
    assert message_line(r, Colours(), False) == "[koji] tagged https://koji.example/b/1"


def test_a_message_with_no_summary_gets_its_topic_and_agent() -> None:
    assert summary_of(record(summary=None, agent="alice")) == "buildsys.tag by alice"
    assert summary_of(record(summary=PREFIX + "buildsys.tag")) == "buildsys.tag"
    assert summary_of(record(summary="buildsys.tag")) == "buildsys.tag"
    assert summary_of({"topic": ""}) == "a message with no topic"


def test_control_characters_and_long_summaries_stay_on_one_short_line() -> None:
    line = message_line(record(summary="a\r\nPRIVMSG #x :pwned \x0304red" + "é" * 400),
                        Colours(), False)
    assert "\n" not in line and "\r" not in line and "\x03" not in line
    assert len(line.encode()) <= MAX_TEXT_BYTES and line.endswith("…")


def test_a_fold_line_counts_by_topic() -> None:
    fold = Fold("koji")
    for _ in range(30):
        fold.add(record(topic="buildsys.build.state.change"), 1.0)
    for _ in range(7):
        fold.add(record(topic="buildsys.tag", link="https://koji.example/"), 2.0)
    assert fold.count == 37 and fold.first_at == 1.0
    assert fold.line(Colours(), False) == \
        "koji: 37 more (buildsys.build.state.change ×30, buildsys.tag ×7) — https://koji.example/"


@pytest.mark.parametrize(("include", "exclude", "passes"), [
    ({}, {}, True),
    ({"applications": ["KOJI"]}, {}, True),
    ({"applications": ["bodhi"]}, {}, False),
    ({"topics": ["*.buildsys.*"], "severities": ["info"]}, {}, True),
    ({"topics": ["*.buildsys.*"], "severities": ["error"]}, {}, False),
    ({"users": ["alice"]}, {}, True),  # the agent
    ({"users": ["bob"]}, {}, True),  # one of the usernames
    ({"packages": ["foo"]}, {"summary": "^tag"}, False),
    ({"packages": ["foo"]}, {"summary": "^nope"}, True),
    ({}, {"packages": ["bar", "foo"]}, False),
    ({"summary": "tagged"}, {"users": ["carol"]}, True),
])
def test_include_must_all_match_and_any_exclude_drops(
        include: dict[str, Any], exclude: dict[str, Any], passes: bool) -> None:
    f = ChannelFilter(FirehoseFilter(**{k: tuple(v) if isinstance(v, list) else v
                                        for k, v in include.items()}),
                      FirehoseFilter(**{k: tuple(v) if isinstance(v, list) else v
                                        for k, v in exclude.items()}))
    r = record(agent="alice", usernames=["bob"], packages=["foo"])
    assert f.passes(r) is passes


@pytest.mark.parametrize(("packages", "passes"), [
    (["containers/toolbox"], True),
    (["toolbox"], False),  # the package of that name is another artifact
    (["flatpaks/toolbox"], False),
    (["rpms/kernel"], True),  # the rules' spelling of a package
    (["kernel"], True),
])
def test_packages_name_every_artifact_kind_as_the_rules_do(packages: list[str],
                                                           passes: bool) -> None:
    f = ChannelFilter(FirehoseFilter(packages=tuple(packages)), FirehoseFilter())
    assert f.passes(record(packages=["kernel"], containers=["toolbox"])) is passes


def test_the_queue_folds_when_a_message_would_wait_too_long() -> None:
    q = ChannelQueue("#c", max_delay=30)
    q.push(record(), 0.0, wait=1)
    q.push(record(app="bodhi"), 0.0, wait=2)
    assert [type(e) for e in q.entries] == [Single, Single]
    q.push(record(topic="buildsys.build"), 0.0, wait=31)
    assert [(e.app, e.count) for e in q.entries] == [("koji", 2), ("bodhi", 1)]
    for _ in range(100):  # later messages join their app's fold
        q.push(record(app="copr" if _ % 2 else "koji"), 0.0, wait=31)
    assert [(e.app, e.count) for e in q.entries] == [("koji", 52), ("bodhi", 1), ("copr", 50)]
    entry, text, alone, folded = q.pop(1.0, Colours(), False)
    assert (alone, folded) == (0, 52) and text.startswith("koji: 52 more (buildsys.tag ×51")
    # a fold of one is posted as the message itself
    assert q.pop(1.0, Colours(), False)[1:] == ("[bodhi] tagged", 1, 0)
    # a line that could not be written goes back, with what joined its app since
    entry, *_ = q.pop(1.0, Colours(), False)
    q.push(record(app="copr"), 2.0, wait=0)
    q.requeue(entry)
    assert [(e.app, getattr(e, "count", 1)) for e in q.entries] == [("copr", 50), ("copr", 1)]


def test_the_queue_folds_what_waited_past_max_delay() -> None:
    q = ChannelQueue("#c", max_delay=30)
    for i in range(5):
        q.push(record(), float(i), wait=0)
    assert q.oldest() == 0.0
    assert q.pop(40.0, Colours(), False)[2:] == (0, 5)
    assert q.clear() == 0
