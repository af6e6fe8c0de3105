"""``notifier serve``: the whole service."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click

from ..config import Config
from .common import NotifierCommand, config_option, setup_logging

log = logging.getLogger("notifier.serve")


@click.command(cls=NotifierCommand)
@config_option
@click.option("-v", "--verbose", count=True, help="Log more.")
def serve(config: Config, verbose: int) -> None:
    """Run notifier: relay, matching, delivery and the HTTP endpoints.

    Receives every message from [bus] endpoints (running the relay itself
    unless [bus] embedded_relay = false), stores it in the history, finds who
    wants it, renders it for each destination, and delivers it by email, IRC,
    RSS/Atom feed or desktop notification. Feeds, live streams, unsubscribe
    links, /healthz and /metrics are served on [http] listen.

    SIGTERM or SIGINT drains what is in flight, then exits 0.
    """
    from ..service.app import Service

    setup_logging(verbose)
    started = time.monotonic()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service = Service(config)
    service.start()
    log.info("ready in %.2f s", time.monotonic() - started)
    stop.wait()
    service.stop()
