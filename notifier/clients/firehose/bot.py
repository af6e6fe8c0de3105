"""The bot: the bus subscription, the history, and one :class:`~.network.Network` each.

:class:`Firehose` is a part in the sense of ``notifier serve``'s supervisor
(``name`` and ``run(stopping)``), and ``notifier firehose`` runs it alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

# The one place this client uses the service's internals: the bus client, and the
# describer that gives each message its app, summary and link (see pyproject.toml).
from ...bus.decoding import loads_checked
from ...bus.transport import MalformedFrames
from ...bus.transports import open_subscriber
from ...config import Config
from ...errors import ConfigError, NotifierError
from ...meta.describer import Describer
from .commands import Commands
from .lines import Colours
from .matrix import MatrixServer
from .metrics import FirehoseMetrics, MetricsServer
from .network import Network

log = logging.getLogger(__name__)

#: the fields of a described message the bot keeps in its history
_KEPT = ("msg_id", "topic", "app", "summary", "link", "agent", "usernames", "packages",
         "containers", "modules", "flatpaks", "severity")


class Firehose:
    """Posts the bus to IRC channels and Matrix rooms until stopped (see the package docstring)."""

    name = "firehose"

    def __init__(self, config: Config):
        fh = config.firehose
        if not fh.networks and not fh.matrix:
            raise ConfigError(f"{', '.join(config.sources) or '<defaults>'}: [firehose] has no "
                              "[[firehose.networks]] nor [[firehose.matrix]]: the bot has "
                              "nowhere to post")
        self.config = config
        self.describer = Describer(config)
        self.colours = Colours(fh.colors)
        self.metrics = FirehoseMetrics()
        self.history: deque[Mapping[str, Any]] = deque(maxlen=max(1, fh.history))
        self.commands = Commands(self.history, self.colours)
        self.networks: list[Network | MatrixServer] = [
            Network(spec, self.colours, self.metrics, self.commands) for spec in fh.networks]
        self.networks += [MatrixServer(spec, self.colours, self.metrics, self.commands)
                          for spec in fh.matrix]
        self.metrics.connected = lambda: {n.name: n.connected for n in self.networks}
        self.metrics_server: MetricsServer | None = None
        if fh.metrics_listen:
            self.metrics_server = MetricsServer(fh.metrics_listen, self.metrics)

    def run(self, stopping: threading.Event) -> None:
        """Connect every network and post what the bus brings until ``stopping`` is set."""
        inner = threading.Event()
        threads = [threading.Thread(target=n.run, args=(inner,), name=f"firehose {n.name}",
                                    daemon=True) for n in self.networks]
        for thread in threads:
            thread.start()
        try:
            self._listen(stopping, threads)
        finally:
            inner.set()
            for thread in threads:
                thread.join(10)

    def _listen(self, stopping: threading.Event, threads: list[threading.Thread]) -> None:
        bus = self.config.bus
        with open_subscriber(list(bus.endpoints), ("",), bus.high_water_mark,
                             bus.frame_limit(self.config.max_message_bytes)) as subscriber:
            log.info("firehose: listening to %s", ", ".join(bus.endpoints))
            while not stopping.is_set():
                if not all(t.is_alive() for t in threads):
                    raise RuntimeError("a firehose network thread stopped")
                try:
                    got = subscriber.recv(timeout=0.2)
                except MalformedFrames:
                    continue
                if got is not None:
                    self.handle(got[1], time.monotonic())

    def handle(self, payload: bytes, at: float) -> None:
        """Describe one bus message and offer it to every network."""
        try:
            record = self.describer.describe(loads_checked(payload))
        except (NotifierError, ValueError, KeyError, TypeError) as exc:
            log.debug("a message off the bus was skipped: %s", exc)
            return
        kept = {k: record.get(k) for k in _KEPT}
        self.history.append(kept)
        for network in self.networks:
            network.offer(kept, at)

    def close(self) -> None:
        """Stop the metrics endpoint, if any."""
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
