"""The running service: every stage wired together, started and drained in order.

Every thread and child process is a part under one
:class:`~.supervisor.Supervisor`, which restarts a part that fails and gives
up (``notifier serve`` then exits non-zero) on one that keeps failing:

* ``relay``: the embedded ZeroMQ relay (unless ``[bus] embedded_relay = false``);
* ``ingest``: receives from ``[bus] endpoints``, checks each message, and hands
  batches to the pipeline (describe, match, render, record), then the fresh
  rows to the dispatcher (:mod:`notifier.delivery.ingest`);
* ``worker-<destination>``: one per backend connection, sending what the
  ingest hands over and what the outbox has due;
* ``sender``: the child process that sends SMTP mail and stores feed items
  (:mod:`notifier.delivery.sender`), when there is one;
* ``sent-log``: marks delivered notifications sent, in batches;
* ``digests``: queues digests when they are due;
* ``changes``: applies rule, owner and user changes made by other processes
  to the matcher, incrementally;
* ``http``: the web app, the API, feeds, live streams, unsubscribe, ``/healthz`` and
  ``/metrics``: a child process of its own (:mod:`.webproc`), or with
  ``[http] process = false`` a thread;
* ``housekeeping``: prunes the history, the outbox, the inbox and the change log hourly;
* ``firehose``: with ``[firehose] enabled = true``, the IRC firehose bot
  (:mod:`notifier.clients.firehose`).

On SQLite, one service per database: the constructor takes the database's
:class:`~notifier.storage.servicelock.ServiceLock` before anything else, and
a second service fails there, naming the process that holds it.

Many workers
------------

On PostgreSQL any number of services (*workers*), on one machine or several,
share the database, and with an AMQP bus they share the work: the ingest of
each consumes from the same durable queue (competing consumers), and the
delivery workers claim due rows with ``FOR UPDATE SKIP LOCKED``. Each worker
registers in the table ``workers`` and beats every second (the part
``heartbeat``, :mod:`notifier.storage.workers`); its outbox claims name it,
and those of a worker whose heartbeat stopped for 6 s are taken by the
others. At start a worker releases only the claims of dead workers.

The parts that must run once run in one worker at a time, the one holding
their PostgreSQL advisory lock (:mod:`.leader`), and move to another when it
dies: ``worker-irc`` (one connection, one nick), ``digests`` (each digest
queued once), ``housekeeping`` and ``firehose``. The others wait, ready.

``role`` (``notifier serve --role``) splits the parts between workers:
``ingest`` runs the bus consumer and the pipeline, recording to the outbox
(nothing is claimed for local workers); ``deliver`` the backend workers, the
sender process, the sent log and digests; ``http`` the web app; ``all`` (the
default) everything. ``heartbeat``, ``changes`` (each worker's matcher and
user cache follow the change log) and ``housekeeping`` run in every role. A
worker without ``http`` still answers ``/healthz`` and ``/metrics`` on
``[http] listen`` (:mod:`.healthport`). Roles other than ``all`` need
PostgreSQL.

On :meth:`Service.stop` the ingest loop stops taking messages, processes what
it already received, then the workers finish their current send and stop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend
from ..bus.transport import SubscriberTransport
from ..bus.transports import open_subscriber
from ..config import Config, parse_duration
from ..delivery.digests import DigestScheduler
from ..delivery.dispatch import Dispatcher
from ..delivery.ingest import Ingest
from ..delivery.periodic import Periodic
from ..delivery.pipeline import Pipeline
from ..errors import ConfigError, StorageError
from ..storage.engine import redact
from ..storage.inbox import Inbox
from ..storage.mutes import Mutes
from ..storage.outbox import Outbox
from ..storage.servicelock import ServiceLock
from ..storage.workers import Registry
from ..users.cache import UserCache
from .changes import ChangeWatcher
from .healthport import HealthServer
from .leader import Leader
from .metrics import Metrics
from .supervisor import Supervisor
from .webproc import WebProcess

if TYPE_CHECKING:
    from ..web import WebServer

log = logging.getLogger(__name__)

#: seconds between two runs of housekeeping
HOUSEKEEPING_INTERVAL = 3600.0
#: what ``notifier serve --role`` takes
ROLES = ("ingest", "deliver", "http", "all")
#: destinations whose backend holds one connection for the whole installation
SINGLE_CONNECTION = ("irc",)


class Service:
    """``notifier serve``. Build it, :meth:`start` it, :meth:`stop` it.

    ``on_give_up(name)`` is called (from the supervisor's thread) when a part
    cannot be kept up; the caller then stops the service and exits non-zero
    (:attr:`gave_up` names the part).
    """

    def __init__(self, config: Config, *, backends: dict[str, Backend] | None = None,
                 on_give_up: Callable[[str], None] | None = None, role: str = "all"):
        self.config = config
        if role not in ROLES:
            raise ConfigError(f"--role {role!r}: must be one of {', '.join(ROLES)}")
        self.role = role
        url = config.resolved_database_url()
        if role != "all" and not url.startswith("postgresql"):
            # Refused before anything is opened, or created, on a database not meant for it.
            raise ConfigError(
                f"--role {role}: splitting the service between workers needs database_url "
                f"on PostgreSQL (this one, from "
                f"{', '.join(config.sources) or 'the built-in defaults'}, is {redact(url)}); "
                f"on SQLite one notifier serve runs everything (--role all)")
        # Before anything touches the database: a second service on a SQLite file stops here.
        self.lock = ServiceLock(url)
        self.lock.acquire()
        self._closers: list[Callable[[], None]] = [self.lock.release]
        try:
            self._build(config, backends, on_give_up)
        except BaseException:
            self.close()
            raise

    def _build(self, config: Config, backends: dict[str, Backend] | None,
               on_give_up: Callable[[str], None] | None) -> None:
        from ..meta import Describer
        from ..render import Renderer, verify_unsubscribe_token
        from ..rules.matcher import Matcher
        from ..storage import Store
        from ..storage.destinations import Destinations

        self.store = Store.from_config(config)
        self._closers.append(self.store.close)
        #: other workers may share the database (PostgreSQL)
        self.shared = self.store.dialect == "postgresql"
        self.registry = Registry(self.store, self.role) if self.shared else None
        self.outbox = Outbox(self.store, claimant=self.registry)
        self.inbox = Inbox(self.store)
        self.mutes = Mutes(self.store)
        self.secret = self.outbox.secret()
        self._verify_unsubscribe = verify_unsubscribe_token
        self.describer = Describer(config)
        # A stored rule that no longer validates (written by an older version, or its
        # destination's backend gone) is left out alone; every other rule still matches.
        self.matcher = Matcher.from_store(self.store, on_invalid=lambda problem: log.error(
            "a stored rule is left out: %s", problem))
        self.renderer = Renderer(config, secret=self.secret)
        # Delivery sees each user with verified addresses only (a pending one is never sent to).
        destinations = Destinations(self.store)
        self.users = UserCache(config, self.store, shape=destinations.deliverable)
        self.users.preload(destinations.deliverable_all(self.store.list_users()))
        self.pipeline = Pipeline(config, self.outbox, self.describer, self.matcher,
                                 self.renderer, self.users.get)
        self.metrics = Metrics(outbox_depth=self._outbox_depth, lag=self._lag)
        self._on_give_up = on_give_up or (lambda name: None)
        self.supervisor = Supervisor(on_restart=self.metrics.restarted,
                                     on_give_up=self._on_give_up)
        self.changes = ChangeWatcher(self.store, self.matcher, self.users)
        self.stopping = threading.Event()
        ingests, delivers, serves = (self.role in ("ingest", "all"),
                                     self.role in ("deliver", "all"),
                                     self.role in ("http", "all"))
        self.dispatcher = Dispatcher(config, self.outbox, in_memory=self.store.in_memory,
                                     on_result=self.metrics.outcome, backends=backends,
                                     local=delivers)
        self.pipeline.delivered = frozenset(self.dispatcher.destinations)
        self.digests = DigestScheduler(self.outbox, self.renderer, self.users.get,
                                       on_queued=self.dispatcher.wake,
                                       on_result=self.metrics.outcome)
        self.relay = None
        # On AMQP the broker routes: there is no ZeroMQ relay to embed.
        if ingests and config.bus.embedded_relay and not config.bus.relay_inbound.startswith(
                ("amqp://", "amqps://")):
            from ..bus.relay import Relay

            self.relay = Relay.from_config(config)
            self._closers.append(self.relay.close)
        # Binds [http] listen: a clash stops serve here, before anything runs.
        self.web: WebServer | WebProcess | HealthServer
        if not serves:
            self.web = HealthServer(config, health=self.health, metrics=self.metrics.render)
        elif config.http.process and not self.store.in_memory:
            self.web = WebProcess(config, health=self.health, metrics=self.metrics.render,
                                  changed=self.changes.poll)
        else:
            from ..web import WebServer

            self.web = WebServer(config, store=self.store, outbox=self.outbox,
                                 users=self.users, health=self.health,
                                 metrics=self.metrics.render,
                                 check_unsubscribe=self._check_unsubscribe,
                                 unsubscribe=self._unsubscribe)
            # A rule muted or snoozed through the API applies before the answer goes back.
            self.web.api.changed = self.changes.poll
        self._closers.append(self.web.close)
        self.ingest: Ingest | None = None
        if ingests:
            self.ingest = self._build_ingest(config)
        self.housekeeping = Periodic("housekeeping", HOUSEKEEPING_INTERVAL, self._prune)
        parts: list[Any] = [self.relay] if self.relay is not None else []
        if delivers:
            parts += [self._once(p) if p in self._single_workers() else p
                      for p in self.dispatcher.parts()]
            parts.append(self._once(self.digests))
        if self.registry is not None:
            parts.append(self.registry)
        parts += [self.changes, *([self.ingest] if self.ingest is not None else []),
                  self.web, self._once(self.housekeeping)]
        for part in parts:
            self.supervisor.add(part)
        if ingests:
            self._add_firehose(config)

    def _build_ingest(self, config: Config) -> Ingest:
        self.subscriber: SubscriberTransport = open_subscriber(
            config.bus.endpoints, ("",), config.bus.high_water_mark,
            config.bus.frame_limit(config.max_message_bytes), bus=config.bus, durable=True)
        self._closers.append(self.subscriber.close)
        validator = None
        if config.validate_signatures:
            from ..bus.signing import Validator

            validator = Validator.from_config(config)
        return Ingest(config, self.subscriber, self.pipeline, self.dispatcher,
                      self.metrics, validator=validator, on_recorded=self.web.on_recorded)

    def _single_workers(self) -> list[Any]:
        """The workers that must run in one worker of all (on PostgreSQL)."""
        if not self.shared:
            return []
        return [w for w in self.dispatcher.workers if w.destination in SINGLE_CONNECTION]

    def _once(self, part: Any) -> Any:
        """``part``, held by one worker of all through its lock (see :mod:`.leader`)."""
        if not self.shared:
            return part
        on_lead = None
        if getattr(part, "destination", None) in SINGLE_CONNECTION:
            destination = part.destination
            self.dispatcher.stand_by(destination, True)

            def on_lead(leading: bool) -> None:
                self.dispatcher.stand_by(destination, not leading)
                if not leading:
                    part.close()  # its connection goes, for the next holder to open its own

        leader = Leader(part, self.store, on_lead=on_lead)
        self.metrics.leads(part.name, lambda: leader.leading)
        return leader

    def _add_firehose(self, config: Config) -> None:
        """``[firehose] enabled``: the IRC firehose bot runs as the part ``firehose``."""
        if not config.firehose.enabled:
            return
        from ..clients.firehose import Firehose

        firehose = Firehose(config)
        self._closers.append(firehose.close)
        self.metrics.include(firehose.metrics.render)  # on serve's /metrics too
        self.supervisor.add(self._once(firehose))

    @property
    def gave_up(self) -> str | None:
        """The part the supervisor gave up on, if any."""
        return self.supervisor.gave_up

    # -- running ---------------------------------------------------------------

    def start(self) -> None:
        """Start every part; log where everything listens."""
        try:
            if self.registry is not None:
                # Other workers may share the database: only dead ones' claims are released.
                self.registry.register()
                released = self.outbox.release_claims(dead_only=True)
                if released:
                    log.info("took back %d notifications claimed by workers that stopped",
                             released)
                log.info("worker %s (role %s)", self.registry.id, self.role)
            elif self.config.bus.embedded_relay:
                # One machine owns every row: what a killed run had claimed is due again now.
                released = self.outbox.release_claims()
                if released:
                    log.info("took back %d notifications claimed before a restart", released)
            if self.role in ("deliver", "all"):
                # A backend's mistake (no session bus) stops serve here.
                self.dispatcher.setup()
        except BaseException:
            self.close()
            raise
        self.supervisor.start()
        bus = self.config.bus
        if self.ingest is not None:
            log.info("listening to the bus at %s", ", ".join(bus.endpoints))
        if isinstance(self.web, HealthServer):
            log.info("http: /healthz and /metrics only (role %s) on %s", self.role,
                     self.config.http.listen)
        else:
            log.info("http: %s (feeds, streams, /healthz, /metrics) on %s",
                     self.config.http.public_url(), self.config.http.listen)
        log.info("database: %s", self.store.display_url)
        if self.role in ("deliver", "all"):
            log.info("backends: %s", self.dispatcher.describe())
        self._warn_undelivered()

    def _warn_undelivered(self) -> None:
        """Warn about rules whose destinations nothing delivers, from the loaded rules.

        Reading every stored document again would cost seconds with many rules;
        only the rules that use such a destination are handed over.
        """
        enabled = [r for r in self.matcher.rules() if not r.disabled]
        used = {d for dests in {r.destinations for r in enabled} for d in dests}
        missing = {d for d in used if d != "desktop" and self.pipeline.missing_backend(d)}
        if missing:
            self.pipeline.warn_undelivered(
                {"user": r.user, "destinations": r.destinations} for r in enabled
                if not missing.isdisjoint(r.destinations))

    def stop(self) -> None:
        """Drain what is in flight, then stop everything, in order."""
        log.info("stopping: draining what is in flight")
        self.stopping.set()
        stages: list[tuple[list[str], float]] = [
            (["ingest"], 30.0),
            (["digests", "changes", "housekeeping", "firehose"], 10.0),
            ([w.name for w in self.dispatcher.workers], 30.0),
            (["sender"], 45.0),
            (["sent-log"], 30.0),
        ]
        for names, timeout in stages:
            self.supervisor.stop([n for n in names if n in self.supervisor.names], timeout)
        try:
            self.dispatcher.close()
        except Exception:  # the rest must still stop and be released
            log.exception("closing the delivery side (what was not written is due again "
                          "when its claims run out)")
        self.supervisor.stop([n for n in ("http", "relay", "heartbeat")
                              if n in self.supervisor.names], 10.0)
        if self.registry is not None:
            try:
                # What this worker still claims (a send cut short) is due at once elsewhere.
                self.registry.unregister()
            except StorageError as exc:
                log.warning("could not unregister this worker; its claims end when its "
                            "heartbeat is stale: %s", exc)
        self.close()
        log.info("stopped")

    def close(self) -> None:
        """Release what was opened, newest first, each once (:meth:`stop` does it too)."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # the rest must still be released
                log.exception("closing %s", getattr(closer, "__qualname__", closer))

    def health(self, kind: str = "ready") -> tuple[bool, dict[str, Any]]:
        """Whether the service is ``live`` or ``ready``, and why not (see the supervisor)."""
        ok, report = self.supervisor.health(kind)
        report = {"status": report["status"],
                  "uptime": round(time.time() - self.metrics.started, 1), **report,
                  "role": self.role, "changes_seen": self.changes.seen}
        if self.role in ("deliver", "all"):
            report.update(self.dispatcher.health())
        if self.registry is not None:
            report["worker"] = self.registry.id
            report["leading"] = sorted(
                name for name in self.supervisor.names
                if getattr(self.supervisor.part(name), "leading", False))
        return ok, report

    # -- housekeeping ----------------------------------------------------------

    def _prune(self) -> None:
        retention = parse_duration(self.config.history.retention)
        pruned = self.store.prune_history(retention)
        finished = self.outbox.prune(retention)
        inbox = self.inbox.prune(retention)
        self.changes.prune()
        log.info("pruned %d messages, %d finished notifications and %d inbox entries older "
                 "than %s", pruned, finished, inbox, self.config.history.retention)

    # -- metrics and HTTP ------------------------------------------------------

    # While the database cannot be read, these gauges are unknown (NaN), and /metrics
    # still answers: the counters tell what is going on then.
    def _outbox_depth(self) -> float:
        try:
            return float(self.outbox.depth())
        except StorageError:
            return math.nan

    def _lag(self) -> float:
        try:
            oldest = self.outbox.oldest_due()
        except StorageError:
            return math.nan
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def _check_unsubscribe(self, token: str) -> tuple[str, str]:
        return self._verify_unsubscribe(self.secret, token)

    def _unsubscribe(self, token: str) -> tuple[str, str]:
        user, rule = self._verify_unsubscribe(self.secret, token)
        # Muting, as the API's mute does; a rule removed since changes nothing.
        self.mutes.mute_named(user, rule)
        self.changes.poll()
        log.info("%s muted rule %r through an unsubscribe link", user, rule)
        return user, rule
