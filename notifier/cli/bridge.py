"""``notifier bridge``: between a ZeroMQ bus (fedmsg) and an AMQP broker (fedora-messaging)."""

from __future__ import annotations

import logging
import threading

import click

from ..config import Config
from .common import NotifierCommand, config_option, setup_logging
from .stopping import POLL, StopSignals

log = logging.getLogger(__name__)


def _amqp_default(config: Config) -> str | None:
    for address in (config.bus.relay_inbound, *config.bus.endpoints):
        if address.startswith(("amqp://", "amqps://")):
            return address
    return None


@click.command(cls=NotifierCommand)
@config_option
@click.option("--amqp", "amqp_url", metavar="URL",
              help="The AMQP broker (default: the first amqp:// address in [bus]).")
@click.option("--from-zmq", multiple=True, metavar="ENDPOINT",
              help="Carry what is published on this ZeroMQ endpoint (a relay's outbound, "
                   "a passive publisher) to AMQP. Repeatable.")
@click.option("--to-zmq", metavar="ADDRESS",
              help="Carry what arrives on the bridge's AMQP queue to this ZeroMQ relay "
                   "inbound (as fedmsg-logger would publish it).")
@click.option("--queue", default="notifier.bridge", show_default=True,
              help="The bridge's durable AMQP queue (AMQP to ZeroMQ); dead letters go to "
                   "QUEUE.dead.")
@click.option("--routing-key", "routing_keys", multiple=True, default=("#",),
              show_default=True, help="What the bridge's queue is bound to on amq.topic. "
                                      "Repeatable.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds one attempt to publish may take before it is tried again.")
@click.option("-v", "--verbose", count=True, help="Log more.")
def bridge(config: Config, amqp_url: str | None, from_zmq: tuple[str, ...],
           to_zmq: str | None, queue: str, routing_keys: tuple[str, ...], timeout: float,
           verbose: int) -> None:
    """Carry messages between a ZeroMQ bus and an AMQP broker, either way or both.

    \b
    notifier bridge --amqp amqp://localhost/ --from-zmq tcp://127.0.0.1:9940
    notifier bridge --amqp amqp://localhost/ --to-zmq tcp://127.0.0.1:9941
    notifier bridge --from-zmq tcp://relay:9940 --to-zmq tcp://relay:9941

    ZeroMQ carries fedmsg envelopes, AMQP fedora-messaging messages; the
    msg_id is kept. A message is forgotten only once the other side took it
    (the broker confirmed it; the relay had it handed over), and the bridge
    never carries a message back where it came from. Stops on SIGINT or SIGTERM.
    """
    setup_logging(verbose)
    if not from_zmq and not to_zmq:
        raise click.UsageError("nothing to carry: give --from-zmq, --to-zmq, or both")
    amqp_url = amqp_url or _amqp_default(config)
    if not amqp_url:
        raise click.UsageError("no AMQP broker: give --amqp URL (or an amqp:// address in "
                               "[bus])")
    for address in (*from_zmq, *([to_zmq] if to_zmq else [])):
        if not address.startswith(("tcp://", "ipc://")):
            raise click.UsageError(f"{address!r} is not a ZeroMQ address (tcp:// or ipc://)")
    from ..bus.amqp_bridge import AmqpToZmq, RecentIds, ZmqToAmqp, bridge_settings
    from ..bus.amqp_transport import AmqpPublisher, AmqpSubscriber
    from ..bus.transports import open_publisher, open_subscriber

    settings = bridge_settings(config.bus.amqp, queue, routing_keys)
    from_amqp, to_amqp = RecentIds(), RecentIds()
    directions: list[ZmqToAmqp | AmqpToZmq] = []
    closers = []
    try:
        if from_zmq:
            from ..meta import Describer

            zsub = open_subscriber(list(from_zmq), ("",), config.bus.high_water_mark)
            closers.append(zsub.close)
            apub = AmqpPublisher(amqp_url, settings, timeout)
            closers.append(apub.close)
            directions.append(ZmqToAmqp(zsub, apub, from_amqp=from_amqp, to_amqp=to_amqp,
                                        describe=Describer(config).describe_for_headers))
        if to_zmq:
            asub = AmqpSubscriber([amqp_url], (), settings, durable=True)
            closers.append(asub.close)
            zpub = open_publisher(to_zmq, timeout=timeout,
                                  high_water_mark=config.bus.high_water_mark)
            closers.append(zpub.close)
            directions.append(AmqpToZmq(asub, zpub, from_amqp=from_amqp, to_amqp=to_amqp))
        run_directions(directions)
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception:  # the others must still be closed
                log.exception("closing the bridge")


def run_directions(directions: list) -> None:
    """Run each direction in a thread until a signal; exit non-zero if one fails."""
    stopping = threading.Event()
    failed: list[str] = []

    def run(direction) -> None:
        try:
            direction.run(stopping)
        except Exception:
            log.exception("the bridge %s failed", direction.name)
            failed.append(direction.name)
            stopping.set()

    signals = StopSignals()
    threads = [threading.Thread(target=run, args=(d,), name=d.name, daemon=True)
               for d in directions]
    for thread in threads:
        thread.start()
    log.info("bridging: %s", ", ".join(d.name for d in directions))
    while not signals.received and not stopping.is_set():
        stopping.wait(POLL)
    stopping.set()
    for thread in threads:
        thread.join(10)
    for d in directions:
        log.info("%s: carried %d messages, let %d pass that came through the bridge",
                 d.name, d.carried, d.skipped)
    if failed:
        raise click.ClickException(f"the bridge stopped: {', '.join(failed)} failed")
