"""The running service: every stage wired together, started and drained in order.

Threads:

* ``relay``: the embedded ZeroMQ relay (unless ``[bus] embedded_relay = false``);
* ``ingest``: receives from ``[bus] endpoints``, checks each message, and hands
  batches to the pipeline (describe, match, render, record), then the fresh
  rows to the dispatcher (:mod:`notifier.delivery.ingest`);
* ``worker-<destination>``: one per backend connection, sending what the
  ingest hands over and what the outbox has due;
* ``sent-log``: marks delivered notifications sent, in batches;
* ``digests``: queues digests when they are due;
* ``changes``: applies rule, owner and user changes made by other processes
  to the matcher, incrementally;
* ``http``: feeds, the live stream, unsubscribe, ``/healthz`` and ``/metrics``.

On :meth:`Service.stop` the ingest loop stops taking messages, processes what
it already received, then the workers finish their current send and stop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..backends.base import Backend
from ..bus.transport import SubscriberTransport
from ..bus.transports import open_subscriber
from ..config import Config, parse_duration
from ..delivery.digests import DigestScheduler
from ..delivery.dispatch import Dispatcher
from ..delivery.ingest import Ingest
from ..delivery.pipeline import Pipeline
from ..errors import NotifierError
from ..storage.outbox import Outbox
from ..users.cache import UserCache
from ..web import WebServer
from .changes import ChangeWatcher
from .metrics import Metrics

log = logging.getLogger(__name__)


class Service:
    """``notifier serve``. Build it, :meth:`start` it, :meth:`stop` it."""

    def __init__(self, config: Config, *, backends: dict[str, Backend] | None = None):
        from ..meta import Describer
        from ..render import Renderer, verify_unsubscribe_token
        from ..rules.matcher import Matcher
        from ..storage import Store

        self.config = config
        self.store = Store.from_config(config)
        self.outbox = Outbox(self.store)
        self.secret = self.outbox.secret()
        self._verify_unsubscribe = verify_unsubscribe_token
        self.describer = Describer(config)
        self.matcher = Matcher.from_store(self.store)
        self.renderer = Renderer(config, secret=self.secret)
        self.users = UserCache(config, self.store)
        self.users.preload(self.store.list_users())
        self.pipeline = Pipeline(config, self.outbox, self.describer, self.matcher,
                                 self.renderer, self.users.get)
        self.metrics = Metrics(outbox_depth=self._outbox_depth, lag=self._lag)
        self.changes = ChangeWatcher(self.store, self.matcher, self.users)
        self.stopping = threading.Event()
        self.dispatcher = Dispatcher(config, self.outbox, in_memory=self.store.in_memory,
                                     on_result=self.metrics.outcome, backends=backends)
        self.pipeline.delivered = frozenset(self.dispatcher.destinations)
        self.digests = DigestScheduler(self.outbox, self.renderer, self.users.get,
                                       on_queued=self.dispatcher.wake)
        self.relay = None
        if config.bus.embedded_relay:
            from ..bus.relay import Relay

            self.relay = Relay.from_config(config)
        self.subscriber: SubscriberTransport = open_subscriber(
            config.bus.endpoints, ("",), config.bus.high_water_mark,
            config.bus.frame_limit(config.max_message_bytes))
        validator = None
        if config.validate_signatures:
            from ..bus.signing import Validator

            validator = Validator.from_config(config)
        self.web = WebServer(config, store=self.store, outbox=self.outbox, users=self.users,
                             health=self._health, metrics=self.metrics.render,
                             check_unsubscribe=self._check_unsubscribe,
                             unsubscribe=self._unsubscribe)
        self.ingest = Ingest(config, self.subscriber, self.pipeline, self.dispatcher,
                             self.metrics, validator=validator, on_recorded=self.web.on_recorded)
        self._threads: list[threading.Thread] = []

    # -- running ---------------------------------------------------------------

    def start(self) -> None:
        """Start every thread; log where everything listens."""
        if self.config.bus.embedded_relay:
            # One machine owns every row: what a killed run had claimed is due again now.
            released = self.outbox.release_claims()
            if released:
                log.info("took back %d notifications claimed before a restart", released)
        if self.relay is not None:
            self._threads.append(self.relay.start_thread())
        self.dispatcher.start()
        try:
            self.digests.start()
            self.changes.start()
            for target, name in (((lambda: self.ingest.run(self.stopping)), "ingest"),
                                 ((lambda: self.web.run(self.stopping)), "http"),
                                 (self._housekeeping, "housekeeping")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            if self.dispatcher.sender is not None:
                self.dispatcher.sender.stop(5)  # or the exit would wait for the child
            raise
        bus = self.config.bus
        log.info("listening to the bus at %s", ", ".join(bus.endpoints))
        log.info("http: %s (feeds, streams, /healthz, /metrics) on %s",
                 self.config.http.public_url(), self.config.http.listen)
        log.info("database: %s", self.store.display_url)
        log.info("backends: %s", self.dispatcher.describe())
        self.pipeline.warn_undelivered(self.store.list_rules())

    def stop(self) -> None:
        """Drain what is in flight, then stop everything."""
        log.info("stopping: draining what is in flight")
        self.stopping.set()
        for thread in self._threads:
            if thread.name in ("ingest", "http"):
                thread.join(30)
        self.digests.stop()
        self.changes.stop()
        self.dispatcher.stop()
        self.web.close()
        if self.relay is not None:
            self.relay.stop()
        self.subscriber.close()
        self.store.close()
        log.info("stopped")

    # -- housekeeping ----------------------------------------------------------

    def _housekeeping(self) -> None:
        retention = parse_duration(self.config.history.retention)
        while not self.stopping.wait(3600):
            try:
                pruned = self.store.prune_history(retention)
                finished = self.outbox.prune(retention)
                self.changes.prune()
                log.info("pruned %d messages and %d finished notifications older than %s",
                         pruned, finished, self.config.history.retention)
            except NotifierError as exc:
                log.error("housekeeping: %s", exc)

    # -- HTTP ------------------------------------------------------------------

    def _health(self, kind: str) -> tuple[bool, dict[str, Any]]:
        down = sorted(t.name for t in self._threads if not t.is_alive())
        body = {"status": "down" if down else "ok", "down": down,
                "uptime": round(time.time() - self.metrics.started, 1), **self.dispatcher.health()}
        return not down, body

    def _outbox_depth(self) -> float:
        return float(self.outbox.depth())

    def _lag(self) -> float:
        oldest = self.outbox.oldest_due()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def _check_unsubscribe(self, token: str) -> tuple[str, str]:
        return self._verify_unsubscribe(self.secret, token)

    def _unsubscribe(self, token: str) -> tuple[str, str]:
        user, rule = self._verify_unsubscribe(self.secret, token)
        self.store.set_rule_disabled(user, rule, True)
        self.changes.poll()
        log.info("%s disabled rule %r through an unsubscribe link", user, rule)
        return user, rule


