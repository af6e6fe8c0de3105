"""``notifier relay``: the embedded ZeroMQ relay."""

from __future__ import annotations

import click

from ..bus.relay import Relay
from ..config import Config
from .common import NotifierCommand, config_option, setup_logging
from .stopping import POLL, StopSignals


@click.command(cls=NotifierCommand)
@config_option
@click.option("-v", "--verbose", count=True, help="Log more.")
def relay(config: Config, verbose: int) -> None:
    """Forward messages from publishers to subscribers.

    Binds [bus] relay_inbound (publishers such as notifier-logger and
    fedmsg-logger connect there) and [bus] endpoints[0] (notifier-tail and
    notifier serve connect there), exactly as written. Stops on SIGINT or SIGTERM.

    The relay only forwards: it stores and delivers nothing. 'notifier serve'
    runs a relay of its own besides everything else, so this command is for
    setups where several services share one separate relay ([bus]
    embedded_relay = false in theirs).
    """
    setup_logging(verbose)
    if not config.bus.endpoints:
        raise click.UsageError("[bus] endpoints is empty: the relay needs somewhere to publish")
    r = Relay.from_config(config)
    signals = StopSignals()
    thread = r.start_thread()
    while not signals.received and thread.is_alive():
        thread.join(POLL)
    r.stop()
    thread.join(5)
