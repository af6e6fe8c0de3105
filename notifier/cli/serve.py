"""``notifier serve``: the whole service."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time

import click

from ..config import Config
from .common import NotifierCommand, config_option, setup_logging
from .stopping import StopSignals

log = logging.getLogger("notifier.serve")

#: seconds a busy thread runs before the interpreter lets a waiting one in
SWITCH_INTERVAL = 0.0005


@click.command(cls=NotifierCommand)
@config_option
@click.option("-v", "--verbose", count=True, help="Log more.")
@click.option("--role", type=click.Choice(["ingest", "deliver", "http", "all"]),
              default="all", show_default=True,
              help="The parts this worker runs: ingest (bus consumer and pipeline, "
                   "recording to the outbox), deliver (backend workers, sender, digests), "
                   "http (the web app), or all. Roles other than all need "
                   "database_url on PostgreSQL.")
def serve(config: Config, verbose: int, role: str) -> None:
    """Run notifier: relay, matching, delivery and the HTTP endpoints.

    Receives every message from [bus] endpoints (running the relay itself
    unless [bus] embedded_relay = false), stores it in the history, finds who
    wants it, renders it for each destination, and delivers it by email, IRC,
    RSS/Atom feed or desktop notification. Feeds, live streams, unsubscribe
    links, /healthz/live, /healthz/ready and /metrics are served on [http]
    listen.

    A part that fails is restarted; one that keeps failing (more than 5
    times in 5 minutes) stops the service, which exits 1 so that systemd
    restarts it whole. On SQLite, one service per database: a second one
    exits 1, naming the process that holds it.

    On PostgreSQL, any number of workers (notifier serve processes, on one
    machine or several) may share the database and, with an AMQP bus, the
    work: each registers and beats every second; the notifications a worker
    claimed are taken over by the others within 10 s of its death. The IRC
    connection, digests, housekeeping and the firehose run in one worker at
    a time (a PostgreSQL advisory lock), and move when it dies. --role
    splits the parts between workers; one without http still answers
    /healthz and /metrics on [http] listen.

    SIGTERM or SIGINT drains what is in flight, then exits 0.
    """
    from ..service.app import Service

    setup_logging(verbose)
    # The relay and the delivery workers wait on sockets; each message or reply must win
    # the interpreter back from the busy ingest thread, which by default yields it only
    # every 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL)
    started = time.monotonic()
    signals = StopSignals()
    gave_up = threading.Event()
    service = Service(config, on_give_up=lambda name: gave_up.set(), role=role)
    # The rules index and the user cache live as long as the process. Left to the
    # collector, every full collection walks them all (60-110 ms with 10,000 users),
    # stalling every thread; frozen, it only walks what came later.
    gc.collect()
    gc.freeze()
    service.start()
    log.info("ready in %.2f s", time.monotonic() - started)
    signals.wait(also=gave_up)
    service.stop()
    if service.gave_up is not None:
        log.error("notifier serve exits: %s could not be kept up (see above); exit status 1, "
                  "for the whole service to be restarted", service.gave_up)
        sys.exit(1)
