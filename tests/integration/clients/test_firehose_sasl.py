"""The firehose's SASL PLAIN against a real server: InspIRCd with Atheme's services linked
(NickServ accounts, SaslServ), an account registered by a real client, and a second real
client that asks the server what it knows of the bot (WHOIS) in a channel that lets in
only logged-in users (``+R``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import poll, wait_for
from tests.integration.backends.peers_irc import IrcServer

from .firehose_peers import Bot, Bus, InspIRCd, Services, Watcher, network
from .test_firehose_irc import colour

pytestmark = pytest.mark.integration


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    ircd = InspIRCd(tmp_path / "inspircd", services=True).start()
    try:
        linked = Services(tmp_path / "atheme", ircd).start()
        try:
            linked.register("firehose", "s3cret")
            yield linked
        finally:
            linked.stop()
    finally:
        ircd.stop()


@pytest.fixture
def bus() -> Iterator[Bus]:
    running = Bus()
    try:
        yield running
    finally:
        running.close()


def account_of(watcher: Watcher, nick: str) -> str | None:
    """What the server says ``nick`` is logged in as (WHOIS 330), or None when it says
    the WHOIS is over without one."""
    seen = len(watcher.lines())
    watcher.conn.whois([nick])
    wait_for(lambda: any(x.kind in ("whoisaccount", "endofwhois", "nosuchnick")
                         for x in watcher.lines()[seen:]), f"the WHOIS of {nick}", 10)
    for line in watcher.lines()[seen:]:
        if line.kind == "whoisaccount" and line.text.split()[0] == nick:
            return line.text.split()[1]
    return None


def test_sasl_plain_logs_in_before_joining_an_accounts_only_channel(
        services: Services, bus: Bus) -> None:
    watcher = Watcher(services.ircd.port, "watcher", ["#acct"])
    watcher.conn.mode("#acct", "+R")
    wait_for(lambda: [x for x in watcher.lines("mode", "#acct") if x.text == "+R"],
             "+R on #acct", 5)
    bot = Bot(bus, {"networks": [network(services.ircd.port, [{"name": "#acct"}],
                                         sasl_username="firehose", sasl_password="s3cret")]})
    try:
        bot.wait_joined()  # +R: the server let it in as a logged-in user
        assert account_of(watcher, "firehose") == "firehose"
        bus.publish("koji", "buildsys.tag", {"log": "as an account"})
        wait_for(lambda: watcher.texts("#acct"), "a line in #acct", 10)
    finally:
        bot.close()
        watcher.close()
    assert watcher.texts("#acct") == [f"{colour('koji')}[koji]\x03 as an account"]
    assert bot.count("", "disconnects") == 0


def test_a_wrong_sasl_password_is_an_error_and_never_a_silent_success(
        services: Services, bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "notifier.clients.firehose")
    watcher = Watcher(services.ircd.port, "watcher", ["#acct"])
    bot = Bot(bus, {"networks": [network(services.ircd.port, [{"name": "#acct"}],
                                         sasl_username="firehose", sasl_password="wrong")]})
    try:
        wait_for(lambda: "SASL login failed" in caplog.text, "the SASL error", 15)
        # it is never registered, never joins, and never posts
        assert not poll(lambda: bot.network.connected or bot.network.channels["#acct"].joined,
                        3)
        assert account_of(watcher, "firehose") is None
        bus.publish("koji", "buildsys.tag", {"log": "never"})
        assert not poll(lambda: watcher.texts("#acct"), 2)
    finally:
        bot.close()
        watcher.close()
    failed = [r for r in caplog.records if "SASL login failed" in r.getMessage()]
    assert failed and failed[0].levelno == logging.ERROR
    # the server's reason (904), and what to check
    assert failed[0].getMessage() == (
        "test: SASL login failed as firehose: SASL authentication failed "
        "(check sasl_username and sasl_password)")
    assert not bot.failure


def test_sasl_asked_of_a_server_without_it_is_an_error(
        tmp_path: Path, bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "notifier.clients.firehose")
    ngircd = IrcServer("ngircd", tmp_path / "ngircd").start()  # no SASL
    try:
        bot = Bot(bus, {"networks": [network(ngircd.port, [{"name": "#x"}],
                                             sasl_username="firehose",
                                             sasl_password="s3cret")]})
        try:
            wait_for(lambda: "SASL login failed" in caplog.text, "the SASL error", 15)
            assert not poll(lambda: bot.network.channels["#x"].joined, 2)
        finally:
            bot.close()
    finally:
        ngircd.stop()
    assert "test: SASL login failed as firehose: server does not support sasl" in caplog.text
