"""The running service: every stage wired together, started and drained in order.

Threads:

* ``relay``: the embedded ZeroMQ relay (unless ``[bus] embedded_relay = false``);
* ``ingest``: receives from ``[bus] endpoints``, checks each message, and hands
  batches to the pipeline (describe, match, render, record);
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
from ..backends.registry import backend_class
from ..bus.envelope import decode_envelope
from ..bus.transport import MalformedFrames, SubscriberTransport, open_subscriber
from ..config import Config, parse_duration
from ..delivery.digests import DigestScheduler
from ..delivery.handoff import DueQueue, SentLog, give_back
from ..delivery.outbox import Outbox
from ..delivery.pipeline import Pipeline
from ..delivery.sender import SenderProcess
from ..delivery.workers import BackendWorker, build_workers, stop_workers
from ..errors import DirectoryError, NotifierError, SignatureError
from .changes import ChangeWatcher
from .http import Endpoints, make_server
from .metrics import Metrics

log = logging.getLogger(__name__)

BATCH_MAX = 500
NOTHING = object()  # what _receive returns when nothing arrived


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
        self._new_rows = threading.Condition()
        self.sent_log = SentLog(self.outbox)
        self.queues: dict[str, DueQueue] = {}
        self.sender: SenderProcess | None = None
        self.workers = self._workers(backends)
        self._by_destination: dict[str, list[BackendWorker]] = {}
        for worker in self.workers:
            self._by_destination.setdefault(worker.destination, []).append(worker)
        self.digests = DigestScheduler(self.outbox, self.renderer, self.users.get,
                                       on_queued=self._wake)
        self.relay = None
        if config.bus.embedded_relay:
            from ..bus.relay import Relay

            self.relay = Relay(config.bus.relay_inbound, config.bus.endpoints[0],
                               config.bus.high_water_mark)
        self.subscriber: SubscriberTransport = open_subscriber(
            config.bus.endpoints, ("",), config.bus.high_water_mark)
        self.validator = None
        if config.validate_signatures:
            from ..bus.signing import Validator

            self.validator = Validator.from_config(config)
        self.http = make_server(config.http.listen, Endpoints(
            health=self._health, metrics=self.metrics.render, user=self.users.get,
            feed=self._feed, stream_rows=self._stream_rows, wait_for_rows=self._wait_rows,
            check_unsubscribe=self._check_unsubscribe, unsubscribe=self._unsubscribe,
            stopping=self.stopping))
        self._threads: list[threading.Thread] = []
        self._feeds: Any = None

    # -- set-up --------------------------------------------------------------

    def _workers(self, backends: dict[str, Backend] | None) -> list[BackendWorker]:
        """This process's workers; SMTP mail and feeds may go to a sender process instead."""
        config = self.config
        if backends is None:
            names = ["email", "rss"]
            if config.irc.host:
                names.append("irc")
            if config.dbus.user:
                names.append("desktop")
            backends = {name: backend_class(name)(config) for name in names}
            apart = self._sent_apart()
            for name in apart:
                # Check the settings here, where a mistake stops serve from starting.
                backends.pop(name).setup()
            if apart:
                self.sender = SenderProcess(config, apart, on_result=self.metrics.outcome)
        self.queues = {name: DueQueue(name) for name in backends}
        return build_workers(config, self.outbox, backends, queues=self.queues,
                             sent=self.sent_log, on_result=self.metrics.outcome)

    def _sent_apart(self) -> list[str]:
        """The destinations a sender process delivers: SMTP mail and feeds, when asked for.

        The child opens the database itself, so an in-memory one keeps them here;
        so does a Maildir, which is a few file writes with no round trips to wait on.
        """
        if not self.config.delivery.sender_process or self.store.in_memory:
            return []
        return (["email"] if self.config.email.smtp_host else []) + ["rss"]

    def start(self) -> None:
        """Start every thread; log where everything listens."""
        if self.config.bus.embedded_relay:
            # One machine owns every row: what a killed run had claimed is due again now.
            released = self.outbox.release_claims()
            if released:
                log.info("took back %d notifications claimed before a restart", released)
        if self.relay is not None:
            self._threads.append(self.relay.start_thread())
        self.sent_log.start()
        for worker in self.workers:
            worker.start()  # a backend's set-up may fail (no session bus): before the child
        if self.sender is not None:
            self.sender.start()
        try:
            self.digests.start()
            self.changes.start()
            for target, name in ((self._ingest, "ingest"), (self.http.serve_forever, "http"),
                                 (self._housekeeping, "housekeeping")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            if self.sender is not None:
                self.sender.stop(5)  # or the exit would wait for the child
            raise
        bus = self.config.bus
        log.info("listening to the bus at %s", ", ".join(bus.endpoints))
        log.info("http: %s (feeds, streams, /healthz, /metrics) on %s",
                 self.config.http.public_url(), self.config.http.listen)
        log.info("database: %s", self.store.display_url)
        log.info("backends: %s", ", ".join(
            f"{d} (x{len(ws)})" if len(ws) > 1 else d for d, ws in self._by_destination.items()))
        if self.sender is not None:
            log.info("from a sender process of its own: %s", ", ".join(
                f"email ({self.config.email.connections} SMTP connections)" if d == "email"
                else d for d in self.sender.destinations))

    def stop(self) -> None:
        """Drain what is in flight, then stop everything."""
        log.info("stopping: draining what is in flight")
        self.stopping.set()
        with self._new_rows:
            self._new_rows.notify_all()
        for thread in self._threads:
            if thread.name == "ingest":
                thread.join(30)
        self.digests.stop()
        self.changes.stop()
        stop_workers(self.workers, self.outbox, self.queues)
        if self.sender is not None:
            self.sender.stop()
        self.sent_log.stop()
        self.http.shutdown()
        self.http.server_close()
        if self.relay is not None:
            self.relay.stop()
        self.subscriber.close()
        self.store.close()
        log.info("stopped")

    # -- ingest --------------------------------------------------------------

    def _ingest(self) -> None:
        # A batch is whatever the socket already holds when the first message
        # is taken: no waiting to fill it, so a lone message goes through at once.
        batch: list[dict[str, Any]] = []
        while True:
            stopping = self.stopping.is_set()
            # When stopping, take what the socket already holds, then finish.
            got = self._receive(0 if (batch or stopping) else 0.5)
            if got is not NOTHING:
                if got is not None:
                    batch.append(got)
                if len(batch) < BATCH_MAX:
                    continue
            if batch:
                self._process(batch)
                batch = []
            elif stopping:
                return

    def _receive(self, timeout: float) -> Any:
        """The next envelope; None for one rejected; NOTHING when ``timeout`` passes first."""
        try:
            frames = self.subscriber.recv(timeout)
        except MalformedFrames as exc:
            self._reject("frames", str(exc))
            return None
        if frames is None:
            return NOTHING
        self.metrics.received.inc()
        self.metrics.last_message.set(time.time())
        topic, payload = frames
        if len(payload) > self.config.max_message_bytes:
            self._reject("too-big", f"{len(payload)} bytes on {topic[:200]!r}, "
                                    f"over max_message_bytes {self.config.max_message_bytes}")
            return None
        try:
            envelope = decode_envelope(topic, payload)
        except ValueError as exc:
            self._reject("json", f"on {topic[:200]!r}: {exc}")
            return None
        if self.validator is not None:
            try:
                self.validator.validate(envelope)
            except SignatureError as exc:
                self._reject("signature", f"{envelope.get('msg_id')}: {exc}")
                return None
        return envelope

    def _reject(self, reason: str, detail: str) -> None:
        self.metrics.rejected.labels(reason=reason).inc()
        log.warning("rejected a message (%s): %s", reason, detail)

    def _process(self, batch: list[dict[str, Any]]) -> None:
        # Hand fresh rows to the workers, as many as their queues have room for; the
        # rest wait in the database, where any worker finds them.
        claim = {d: queue.room() for d, queue in self.queues.items()}
        if self.sender is not None:
            claim.update((d, self.sender.room(d)) for d in self.sender.destinations)
        claim = {d: room for d, room in claim.items() if room > 0}
        try:
            result = self.pipeline.process(batch, claim)
        except NotifierError as exc:
            # The database is down: nothing was recorded. Say so loudly; the
            # batch cannot be kept without a database, and the bus does not replay.
            log.error("could not record %d messages: %s", len(batch), exc)
            self.metrics.rejected.labels(reason="storage").inc(len(batch))
            return
        self.metrics.matched.inc(result.matched)
        handed: dict[str, list[Any]] = {}
        for row in result.claimed:
            handed.setdefault(row.destination, []).append(row)
        for destination, rows in handed.items():
            if destination in self.queues:
                self.queues[destination].put(rows)
            elif not self.sender.put(destination, rows):  # type: ignore[union-attr]
                # The sender process just died: due again at once, for its successor.
                give_back(self.outbox, rows, f"{destination} (sender process not running)")
        for destination, n in result.per_destination.items():
            self.metrics.notifications.labels(destination=destination).inc(n)
            # Rows not handed over (no room, a digest's) wait in the database: look there.
            self._wake(destination, database=len(handed.get(destination, ())) < n)
        with self._new_rows:
            self._new_rows.notify_all()

    def _wake(self, destination: str, database: bool = True) -> None:
        if self.sender is not None and destination in self.sender.destinations:
            self.sender.wake(destination, database)
        for worker in self._by_destination.get(destination, ()):
            worker.wake(database)

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

    def _health(self) -> dict[str, Any]:
        health: dict[str, Any] = {
            "status": "ok", "uptime": round(time.time() - self.metrics.started, 1),
            "workers": sorted([w.name for w in self.workers]
                              + (self.sender.names if self.sender is not None else []))}
        if self.sender is not None:
            health["sender"] = {"ready": self.sender.ready, "restarts": self.sender.restarts,
                                "destinations": list(self.sender.destinations)}
        return health

    def _outbox_depth(self) -> float:
        return float(self.outbox.depth())

    def _lag(self) -> float:
        oldest = self.outbox.oldest_due()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def _feed(self, user: dict[str, Any], fmt: str, headers: dict[str, str]
              ) -> tuple[int, dict[str, str], bytes]:
        from ..backends.feedstore import FeedStore
        from ..backends.rss import conditional_response, feed_validators, render_feed

        if self._feeds is None:
            self._feeds = FeedStore.from_config(self.config)
        items = self._feeds.items(user["name"], self.config.delivery.feed_items)
        etag, last_modified = feed_validators(items, fmt)  # type: ignore[arg-type]
        out = {"ETag": etag, "Cache-Control": "private, max-age=60"}
        if last_modified:
            out["Last-Modified"] = last_modified
        if conditional_response(headers, etag, last_modified):
            return 304, out, b""
        url = self.config.http.feed_url(user["name"], user["feed_token"], fmt)
        return 200, out, render_feed(user["name"], items, fmt, url)  # type: ignore[arg-type]

    def _stream_rows(self, user: str, after: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self.outbox.rows(user=user, destination="desktop", after_id=after, limit=200)
        return [(row.id, _stream_payload(row.notification)) for row in rows
                if row.state not in ("held",)]

    def _wait_rows(self, timeout: float) -> None:
        with self._new_rows:
            self._new_rows.wait(timeout)

    def _check_unsubscribe(self, token: str) -> tuple[str, str]:
        return self._verify_unsubscribe(self.secret, token)

    def _unsubscribe(self, token: str) -> tuple[str, str]:
        user, rule = self._verify_unsubscribe(self.secret, token)
        self.store.set_rule_disabled(user, rule, True)
        self.changes.poll()
        log.info("%s disabled rule %r through an unsubscribe link", user, rule)
        return user, rule


def _stream_payload(notification: Any) -> dict[str, Any]:
    content = notification.content
    return {"msg_id": notification.msg_id, "topic": notification.topic,
            "app": notification.app, "summary": content.get("summary", ""),
            "body": content.get("body", ""), "link": notification.link,
            "icon": notification.icon, "severity": notification.severity,
            "timestamp": notification.timestamp, "rules": list(notification.rules)}


class UserCache:
    """User records by name, read from the database once and kept until they change."""

    def __init__(self, config: Config, store: Any):
        from ..users.directory import UserDirectory

        self._directory = UserDirectory(config, store)
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, Any] | None] = {}

    def get(self, name: str) -> dict[str, Any] | None:
        """The user ``name``; None when nobody has that name, or FASJSON cannot be asked."""
        try:
            return self._users[name]
        except KeyError:
            pass
        try:
            user = self._directory.get(name)
        except DirectoryError as exc:
            log.error("user %r: %s", name, exc)
            return None
        # Local records change only through the change log; FASJSON profiles
        # expire on their own TTL, which the directory applies.
        if user is None or user.get("source") != "fasjson":
            with self._lock:
                self._users[name] = user
        return user

    def preload(self, records: list[dict[str, Any]]) -> None:
        """Cache these local records, so the first messages need no lookups."""
        with self._lock:
            for record in records:
                self._users[record["name"]] = {**record, "source": "local"}

    def forget(self, name: str | None = None) -> None:
        """Drop one cached user (or all), so the next lookup reads it again."""
        with self._lock:
            if name is None:
                self._users.clear()
            else:
                self._users.pop(name, None)
