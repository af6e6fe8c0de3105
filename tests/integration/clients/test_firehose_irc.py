"""The firehose bot against real IRC servers (ngircd with its flood protection on, and
InspIRCd for channel mode +c), a real relay, and a second real client in each channel
that asserts exactly what it sees."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.clients.firehose.lines import Colours
from tests.conftest import poll, wait_for
from tests.integration.backends.peers_irc import IrcServer
from tests.integration.backends.test_irc import self_signed

from .firehose_peers import Bot, Bus, InspIRCd, Watcher, network

pytestmark = pytest.mark.integration

FOLD = re.compile(r"^(\x03\d\d)?(?P<app>[\w-]+):(\x03)? (?P<n>\d+) more \((?P<topics>.*)\)")


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[IrcServer]:
    server = IrcServer("ngircd", tmp_path / "ngircd").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bus() -> Iterator[Bus]:
    running = Bus()
    try:
        yield running
    finally:
        running.close()


def colour(app: str) -> str:
    return f"\x03{Colours().of(app):02d}"


def test_filters_colours_method_and_fallback(ngircd: IrcServer, bus: Bus) -> None:
    watcher = Watcher(ngircd.port, "watcher", ["#all", "#koji", "#people"])
    bot = Bot(bus, {"colors": ["bodhi=red"], "networks": [network(ngircd.port, [
        {"name": "#all", "method": "privmsg"},
        {"name": "#koji", "include": {"applications": ["Koji"], "topics": ["*.buildsys.*"]},
         "exclude": {"summary": "^secret"}},
        {"name": "#people", "include": {"users": ["alice"], "severities": ["info"]},
         "exclude": {"packages": ["nope"]}},
    ])]})
    try:
        bot.wait_joined()
        bus.publish("koji", "buildsys.tag", {"log": "tagged foo"})
        bus.publish("koji", "buildsys.tag", {"log": "secret build"})
        bus.publish("koji", "other.thing", {"log": "not a build"})
        bus.publish("bodhi", "update.comment", {"comment": {
            "text": "hi", "user": {"name": "alice"}, "update": {"title": "foo-1.0"}}})
        bus.publish("bodhi", "update.comment", {"comment": {
            "text": "hi", "user": {"name": "alice"}, "update": {"title": "nope-1.0"}}})
        bus.publish("silent", "thing", {})
        wait_for(lambda: len(watcher.texts("#all", "pubmsg")) >= 6, "six lines in #all", 20)
        wait_for(lambda: len(watcher.texts("#people")) >= 1, "alice's line in #people", 10)
        wait_for(lambda: len(watcher.texts("#koji")) >= 1, "the koji line", 10)
    finally:
        bot.close()
        watcher.close()
    koji, bodhi, silent = colour("koji"), "\x0304", colour("silent")
    link = "https://bodhi.fedoraproject.org/updates/"
    # the describer's own summary of a bodhi comment with no meta: its topic and body
    comment = '{bodhi}[bodhi]\x03 bodhi.update.comment: {{"comment":{{"text":"hi","update":' \
              '{{"title":"{title}"}},"user":{{"name":"alice"}}}}}} {link}{title}'
    assert watcher.texts("#all", "pubmsg") == [
        f"{koji}[koji]\x03 tagged foo",
        f"{koji}[koji]\x03 secret build",
        f"{koji}[koji]\x03 not a build",
        comment.format(bodhi=bodhi, title="foo-1.0", link=link),
        comment.format(bodhi=bodhi, title="nope-1.0", link=link),
        f"{silent}[silent]\x03 silent.thing",  # no summary: the topic
    ]
    assert watcher.texts("#all") == []  # method = privmsg: no notices there
    assert watcher.texts("#koji") == [f"{koji}[koji]\x03 tagged foo"]
    assert watcher.texts("#people") == [comment.format(bodhi=bodhi, title="foo-1.0", link=link)]
    assert bot.count("#koji", "lines") == 1 and bot.count("#all", "posted") == 6


def test_no_colours_in_a_plus_c_channel(tmp_path: Path, bus: Bus) -> None:
    server = InspIRCd(tmp_path / "inspircd").start()
    try:
        watcher = Watcher(server.port, "watcher", ["#plain", "#colour"])
        watcher.conn.mode("#plain", "+c")
        wait_for(lambda: [x for x in watcher.lines("mode", "#plain") if x.text == "+c"],
                 "+c on #plain", 5)
        bot = Bot(bus, {"networks": [network(server.port, [
            {"name": "#plain"}, {"name": "#colour"}])]})
        try:
            bot.wait_joined()
            wait_for(lambda: bot.network.channels["#plain"].no_colours, "the bot to see +c", 10)
            bus.publish("koji", "buildsys.tag", {"log": "tagged foo"})
            wait_for(lambda: watcher.texts("#plain") and watcher.texts("#colour"),
                     "a line in each channel", 15)
            # +c set while the bot is in the channel is followed too
            watcher.conn.mode("#colour", "+c")
            wait_for(lambda: bot.network.channels["#colour"].no_colours, "the bot to see +c",
                     10)
            bus.publish("koji", "buildsys.tag", {"log": "tagged bar"})
            wait_for(lambda: len(watcher.texts("#colour")) == 2, "the plain line", 15)
        finally:
            bot.close()
            watcher.close()
    finally:
        server.stop()
    assert watcher.texts("#plain") == ["[koji] tagged foo", "[koji] tagged bar"]
    assert watcher.texts("#colour") == [f"{colour('koji')}[koji]\x03 tagged foo",
                                        "[koji] tagged bar"]
    assert bot.count("#plain", "refused") == 0


def test_a_storm_of_2000_messages_in_10_s_is_folded_and_fully_counted(
        ngircd: IrcServer, bus: Bus) -> None:
    watcher = Watcher(ngircd.port, "watcher", ["#storm"])
    bot = Bot(bus, {"networks": [network(ngircd.port, [
        {"name": "#storm", "max_delay": 5.0}], line_rate=2.0, burst=4)]})
    apps = ["koji", "bodhi", "copr", "pagure"]
    try:
        bot.wait_joined()
        start = time.monotonic()
        for i in range(2000):
            app = apps[i % len(apps)]
            bus.publish(app, "build.state.change" if i % 3 else "tag", {"log": f"m{i}"})
            # 2,000 in 10 s: 200 a second
            ahead = start + (i + 1) / 200 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        published = time.monotonic()

        def counted() -> int:
            total = 0
            for text in watcher.texts("#storm"):
                fold = FOLD.match(text)
                total += int(fold["n"]) if fold else 1
            return total

        wait_for(lambda: counted() >= 2000, "every message posted or counted", 40)
        last_seen = watcher.lines("pubnotice", "#storm")[-1].at
        quits = watcher.lines("quit", sender="firehose")
    finally:
        bot.close()
        watcher.close()
    texts = watcher.texts("#storm")
    assert counted() == 2000
    folds = [FOLD.match(t) for t in texts if FOLD.match(t)]
    assert folds, texts
    assert {f["app"] for f in folds} == set(apps)
    assert all("build.state.change ×" in f["topics"] or "tag ×" in f["topics"] for f in folds)
    # never behind by much: the last line within max_delay (and a line period) of the storm
    assert last_seen - published < 5.0 + 2.0
    # under the network's rate, so ngircd never had a reason to disconnect the bot
    assert bot.count("", "disconnects") == 0
    assert not quits
    assert bot.count("#storm", "posted") + bot.count("#storm", "folded") == 2000
    assert bot.count("#storm", "lines") == len(texts)
    duration = watcher.lines("pubnotice", "#storm")[-1].at - watcher.lines(
        "pubnotice", "#storm")[0].at
    # the line rate (2/s after a burst of 4), with a second for the server's own pacing
    assert len(texts) <= 2.0 * (duration + 1.0) + 4


def test_reconnects_after_a_server_restart_and_loses_no_queued_line(
        ngircd: IrcServer, bus: Bus) -> None:
    watcher = Watcher(ngircd.port, "watcher", ["#r"])
    bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#r"}])]})
    try:
        bot.wait_joined()
        bus.publish("koji", "buildsys.tag", {"log": "before"})
        wait_for(lambda: watcher.texts("#r"), "the first line", 10)
        watcher.close()
        ngircd.kill()
        wait_for(lambda: not bot.network.connected, "the bot to notice", 10)
        for word in ("during one", "during two"):
            bus.publish("koji", "buildsys.tag", {"log": word})
        wait_for(lambda: len(bot.network.channels["#r"].queue) == 2, "two queued lines", 5)
        ngircd.start()
        watcher = Watcher(ngircd.port, "watcher", ["#r"])
        bot.wait_joined(30)
        bus.publish("koji", "buildsys.tag", {"log": "after"})
        wait_for(lambda: len(watcher.texts("#r")) >= 3, "the queued lines and the new one", 15)
    finally:
        bot.close()
        watcher.close()
    koji = colour("koji")
    assert watcher.texts("#r") == [f"{koji}[koji]\x03 {w}" for w in
                                   ("during one", "during two", "after")]
    assert bot.count("", "disconnects") == 1


def test_lines_written_to_a_server_that_dies_before_reading_them_are_posted_again(
        ngircd: IrcServer, bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    # The server is frozen (SIGSTOP): the bot's lines reach its socket, and are never read.
    # Then it is killed, and the lines are lost unless the bot writes them again.
    watcher = Watcher(ngircd.port, "watcher", ["#d"])
    bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#d", "max_delay": 60.0}])]})
    try:
        bot.wait_joined()
        bus.publish("koji", "buildsys.tag", {"log": "before"})
        wait_for(lambda: watcher.texts("#d"), "the first line", 10)
        wait_for(lambda: not bot.network.unconfirmed, "the server to confirm it", 10)
        watcher.close()
        assert ngircd.proc is not None
        os.kill(ngircd.proc.pid, signal.SIGSTOP)
        for word in ("written one", "written two"):
            bus.publish("koji", "buildsys.tag", {"log": word})
        wait_for(lambda: bot.count("#d", "lines") == 3, "the two lines written", 10)
        assert len(bot.network.unconfirmed) == 2  # no PONG from a frozen server
        ngircd.kill()
        wait_for(lambda: not bot.network.connected, "the bot to notice", 10)
        assert bot.count("#d", "resent") == 2
        # its first try finds no server: the watcher is back in #d before the next
        wait_for(lambda: "cannot connect" in caplog.text, "a failed reconnect", 10)
        ngircd.start()
        watcher = Watcher(ngircd.port, "watcher", ["#d"])
        bot.wait_joined(30)
        wait_for(lambda: len(watcher.texts("#d")) >= 2, "the two lines again", 15)
        wait_for(lambda: not bot.network.unconfirmed, "the server to confirm them", 10)
    finally:
        bot.close()
        watcher.close()
    koji = colour("koji")
    assert watcher.texts("#d") == [f"{koji}[koji]\x03 written one",
                                   f"{koji}[koji]\x03 written two"]
    assert bot.count("#d", "lines") == 5 and bot.count("", "disconnects") == 1


def test_rejoins_after_a_kick(ngircd: IrcServer, bus: Bus) -> None:
    watcher = Watcher(ngircd.port, "watcher", ["#k"])  # first in: the channel's operator
    bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#k"}])]})
    try:
        bot.wait_joined()
        watcher.conn.kick("#k", "firehose", "out")
        wait_for(lambda: not bot.network.channels["#k"].joined, "the kick", 5)
        bus.publish("koji", "buildsys.tag", {"log": "while out"})
        bot.wait_joined(15)
        wait_for(lambda: watcher.texts("#k"), "the line queued while out", 10)
    finally:
        bot.close()
        watcher.close()
    assert [x.kind for x in watcher.lines(sender="firehose") if x.kind in ("join", "kick")] \
        == ["join", "join"]
    assert watcher.texts("#k") == [f"{colour('koji')}[koji]\x03 while out"]


def test_commands_help_last_pause_and_resume(ngircd: IrcServer, bus: Bus) -> None:
    op = Watcher(ngircd.port, "op", ["#c"])
    other = Watcher(ngircd.port, "other", ["#c"])
    bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#c"}])]})
    try:
        bot.wait_joined()
        wait_for(lambda: "op" in bot.network.channels["#c"].ops, "the bot to know the op", 5)
        for i in range(3):
            bus.publish("koji", "buildsys.tag", {"log": f"build {i}"})
        bus.publish("bodhi", "update.request", {"log": "an update"})
        wait_for(lambda: len(op.texts("#c")) == 4, "four lines", 10)

        other.say("firehose", "help")
        wait_for(lambda: len(other.lines("privmsg", sender="firehose")) >= 4, "help", 10)
        other.say("#c", "firehose: last 2 koji")
        wait_for(lambda: len(other.lines("privmsg", sender="firehose")) >= 6, "last", 10)
        other.say("#c", "firehose: pause")
        wait_for(lambda: len(other.lines("privmsg", sender="firehose")) >= 7, "refusal", 10)
        op.say("#c", "firehose, pause")
        wait_for(lambda: bot.network.channels["#c"].paused, "the pause", 10)
        bus.publish("koji", "buildsys.tag", {"log": "while paused"})
        wait_for(lambda: bot.count("#c", "dropped") == 1, "the dropped message", 10)
        op.say("firehose", "resume #c")
        wait_for(lambda: not bot.network.channels["#c"].paused, "the resume", 10)
        bus.publish("koji", "buildsys.tag", {"log": "resumed"})
        wait_for(lambda: len(op.texts("#c")) == 5, "the line after resume", 10)
    finally:
        bot.close()
        op.close()
        other.close()
    koji = colour("koji")
    replies = [x.text for x in other.lines("privmsg", sender="firehose")]
    assert replies[0].startswith("I post the message bus here.")
    assert len(replies) == 7
    assert replies[4:6] == [f"{koji}[koji]\x03 build 1", f"{koji}[koji]\x03 build 2"]
    assert replies[6] == "Only operators of #c can do that."
    assert [x.text for x in op.lines("privmsg", sender="firehose")] == [
        "#c paused.", "#c resumed."]
    assert op.texts("#c")[-1] == f"{koji}[koji]\x03 resumed"
    assert not any("while paused" in t for t in op.texts("#c"))


def test_a_nick_in_use_gets_a_suffix_and_is_regained_when_freed(
        ngircd: IrcServer, bus: Bus) -> None:
    squatter = Watcher(ngircd.port, "firehose", ["#n"])
    bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#n"}])]})
    try:
        bot.wait_joined()
        assert bot.network.nick == "firehose_"
        squatter.close()
        wait_for(lambda: bot.network.nick == "firehose", "the bot to regain its nick", 10)
        watcher = Watcher(ngircd.port, "watcher", ["#n"])
        try:
            bus.publish("koji", "buildsys.tag", {"log": "as myself"})
            wait_for(lambda: watcher.lines("pubnotice", "#n"), "a line", 10)
        finally:
            watcher.close()
    finally:
        bot.close()
    assert [(x.sender, x.text) for x in watcher.lines("pubnotice", "#n")] == [
        ("firehose", f"{colour('koji')}[koji]\x03 as myself")]


def test_tls_with_the_servers_certificate_checked(
        tmp_path: Path, bus: Bus, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    pem, crt = self_signed(tmp_path)
    server = IrcServer("miniircd", tmp_path / "miniircd", pem=pem).start()
    try:
        watcher = Watcher(server.port, "watcher", ["#tls"], tls=True)
        untrusting = Bot(bus, {"networks": [network(server.port, [{"name": "#tls"}],
                                                    tls=True)]})
        try:
            # an unknown certificate: never connected, never posted
            assert not poll(lambda: untrusting.network.connected, 2)
            assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        finally:
            untrusting.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(crt))  # the system's trust store, for this test
        bot = Bot(bus, {"networks": [network(server.port, [{"name": "#tls"}], tls=True)]})
        try:
            bot.wait_joined()
            bus.publish("koji", "buildsys.tag", {"log": "over TLS"})
            wait_for(lambda: watcher.texts("#tls"), "a line over TLS", 10)
        finally:
            bot.close()
            watcher.close()
    finally:
        server.stop()
    assert watcher.texts("#tls") == [f"{colour('koji')}[koji]\x03 over TLS"]


def test_nickserv_identify_before_joining(ngircd: IrcServer, bus: Bus) -> None:
    # ngircd has no services: a second real client takes the nick NickServ and answers as
    # services do. The bot must identify first, and join once told it is identified.
    services = Watcher(ngircd.port, "NickServ", [])
    watcher = Watcher(ngircd.port, "watcher", ["#ns"])
    bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#ns"}],
                                         nickserv_password="s3cret")]})
    try:
        wait_for(lambda: services.lines("privmsg", sender="firehose"), "IDENTIFY", 15)
        assert [x.text for x in services.lines("privmsg", sender="firehose")] == [
            "IDENTIFY firehose s3cret"]
        assert not bot.network.channels["#ns"].joined  # it waits to be identified
        told = time.monotonic()
        services.conn.notice("firehose", "You are now identified for firehose.")
        bot.wait_joined(5)
        (join,) = [x for x in watcher.lines("join", "#ns", sender="firehose")]
        assert join.at - told < 5  # on the answer, not after the 10 s it waits at most
    finally:
        bot.close()
        watcher.close()
        services.close()
