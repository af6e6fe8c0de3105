from __future__ import annotations

import pytest

from notifier.meta.topics import TopicNames


@pytest.mark.parametrize(("topic", "app", "event"), [
    ("org.fedoraproject.prod.bodhi.update.comment", "bodhi", "bodhi.update.comment"),
    ("org.fedoraproject.dev.logger.log", "logger", "logger.log"),
    ("org.fedoraproject.stg.buildsys.build.state.change", "buildsys",
     "buildsys.build.state.change"),
    # Our prefix with an environment name we have never heard of.
    ("org.fedoraproject.lab7.ci.done", "ci", "ci.done"),
    # Our prefix without an environment at all.
    ("org.fedoraproject.bodhi.update", "bodhi", "bodhi.update"),
    ("io.pagure.prod.pagure.git.receive", "pagure", "pagure.git.receive"),
    ("org.centos.prod.ci.pipeline.complete", "ci", "ci.pipeline.complete"),
    ("bodhi.update.comment", "bodhi", "bodhi.update.comment"),
    ("bodhi", "bodhi", "bodhi"),
    ("org.fedoraproject.prod", "prod", "prod"),
    ("a.prod", "a", "a.prod"),
])
def test_the_application_is_the_modname(topic, app, event):
    names = TopicNames("org.fedoraproject", "lab7")
    assert names.split(topic) == (app, event)
    assert names.app(topic) == app


def test_an_empty_prefix_still_finds_environments():
    names = TopicNames("", "dev")
    assert names.app("org.fedoraproject.prod.bodhi.update") == "bodhi"
    assert names.app("copr.build.end") == "copr"
