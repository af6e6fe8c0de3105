"""``notifier firehose``: the IRC bot that posts the message bus to channels."""

from __future__ import annotations

import threading

import click

from ..config import Config
from .common import NotifierCommand, config_option, setup_logging
from .stopping import StopSignals


@click.command(cls=NotifierCommand)
@config_option
@click.option("-v", "--verbose", count=True, help="Log more.")
def firehose(config: Config, verbose: int) -> None:
    """Post every message of the bus to IRC channels and Matrix rooms, filtered.

    Subscribes to [bus] endpoints, and posts '[app] summary link' to the
    channels of each [[firehose.networks]] and the rooms of each
    [[firehose.matrix]] whose include and exclude filters the message passes.
    In a storm, a channel's waiting messages are folded into one line per
    app. Say 'help' to the bot for its commands.

    [firehose] enabled = true runs the same bot inside 'notifier serve'
    instead. SIGTERM or SIGINT stops it.
    """
    from ..clients.firehose import Firehose

    setup_logging(verbose)
    bot = Firehose(config)
    signals = StopSignals()
    stopping = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            bot.run(stopping)
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)
            stopping.set()

    thread = threading.Thread(target=run, name="firehose")
    thread.start()
    signals.wait(also=stopping)
    stopping.set()
    thread.join(30)
    bot.close()
    if failed:
        raise click.ClickException(f"the firehose stopped: {failed[0]}")
