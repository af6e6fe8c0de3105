"""``mode = "bus"``: the app subscribes to a real relay and filters with the rules'
vocabulary on this machine."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from notifier.bus.relay import Relay
from tests.conftest import free_port, wait_for
from tests.integration.rawbus import RawPublisher

from .peers import App, MockDaemon, PrivateBus

pytestmark = pytest.mark.integration


@pytest.fixture
def relay() -> Iterator[tuple[str, str]]:
    inbound, outbound = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    running = Relay(inbound, outbound)
    thread = running.start_thread()
    try:
        yield inbound, outbound
    finally:
        running.stop()
        thread.join(5)


def config(endpoint: str, filters: str) -> str:
    return f'mode = "bus"\n[bus]\nendpoints = ["{endpoint}"]\n{filters}'


def test_messages_a_filter_matches_are_shown_and_others_not(
        relay: tuple[str, str], bus: PrivateBus, daemon: MockDaemon, make_app: Any) -> None:
    inbound, outbound = relay
    app: App = make_app(config(outbound, '[[bus.filters]]\nname = "desk"\n'
                                         'track = {kind = "topics", patterns = ["*.desk.*"]}\n'
                                         'filters = {severities = ["info", "error"]}\n'))
    app.start()
    publisher = RawPublisher(inbound)
    try:
        probes = itertools.count()

        def arrived() -> bool:  # ZeroMQ subscriptions take a moment: probe until one lands
            if daemon.calls():
                return True
            frames = publisher.builder.encode("desk", "probe", {"log": f"probe {next(probes)}"})
            publisher.send(*frames)
            return False

        wait_for(arrived, "a probe to be shown", context=app.log, interval=0.2)
        seen = len(daemon.calls())
        publisher.send(*publisher.builder.encode("other", "thing", {"log": "not for me"}))
        publisher.send(*publisher.builder.encode("desk", "thing", {"log": "for me"}))
        wait_for(lambda: len(daemon.calls()) > seen, "the matching one", context=app.log)
    finally:
        publisher.close()
    summaries = [c["summary"] for c in daemon.calls()]
    assert summaries[-1] == "desk: for me"
    assert not any("not for me" in s for s in summaries)
    assert app.status()["mode"] == "bus"
    # no server: no mute action, and nothing to resume from
    assert "mute" not in daemon.calls()[-1]["actions"]


def test_a_bad_filter_is_refused_naming_the_file_and_the_filter(
        bus: PrivateBus, make_app: Any) -> None:
    app: App = make_app(config("tcp://127.0.0.1:1", '[[bus.filters]]\n'
                                                   'track = {kind = "topix"}\n'))
    result = app.run()
    assert result.returncode == 1
    assert str(app.config) in result.stderr and "[[bus.filters]]" in result.stderr
    assert "topix" in result.stderr
