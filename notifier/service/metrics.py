"""Prometheus metrics for one running service (its own registry, no globals).

Every count by destination uses the label ``destination``. A notification
is counted once as ``queued`` when it is recorded for delivery, and once as
``sent``, ``dead`` or still waiting (``notifier_outbox_depth``, or held for
a digest) in the end:

* ``sent``: delivered by a backend (here or in the sender process), stored
  for the live stream (desktop notifications of users other than ``[dbus]
  user``, at once), or put into a digest. A digest is a notification of its
  own: ``queued`` when it is made, then ``sent`` or ``dead`` like any other;
* ``failed``: each failed attempt (it is tried again, or ends ``dead``).

Parts with metrics of their own in the text format (the firehose bot, which
cannot import the service) are added with :meth:`Metrics.include`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    """The service's counters and gauges."""

    def __init__(self, outbox_depth: Callable[[], float], lag: Callable[[], float]):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("notifier_messages_received",
                                "Bus messages received", registry=r)
        self.rejected = Counter("notifier_messages_rejected",
                                "Bus messages rejected, by reason", ["reason"], registry=r)
        self.matched = Counter("notifier_messages_matched",
                               "Messages that matched at least one rule", registry=r)
        self.notifications = Counter("notifier_notifications_queued",
                                     "Notifications put in the outbox, by destination",
                                     ["destination"], registry=r)
        self.sent = Counter("notifier_notifications_sent",
                            "Notifications delivered, by destination", ["destination"],
                            registry=r)
        self.failed = Counter("notifier_notifications_failed",
                              "Failed delivery attempts, by destination", ["destination"],
                              registry=r)
        self.dead = Counter("notifier_notifications_dead",
                            "Notifications given up on, by destination", ["destination"],
                            registry=r)
        self.record_failures = Counter(
            "notifier_ingest_record_failures",
            "Attempts to record a batch of messages that failed: the database could not be used",
            registry=r)
        self.restarts = Counter("notifier_component_restarts",
                                "Parts of the service restarted after a failure, by component",
                                ["component"], registry=r)
        depth = Gauge("notifier_outbox_depth", "Notifications waiting to be sent", registry=r)
        depth.set_function(outbox_depth)
        lag_gauge = Gauge("notifier_lag_seconds",
                          "Age of the oldest notification waiting to be sent", registry=r)
        lag_gauge.set_function(lag)
        self.last_message = Gauge("notifier_last_message_timestamp_seconds",
                                  "When the last bus message was received", registry=r)
        self._leading = Gauge("notifier_leading",
                              "1 for each part that runs in one worker of all (PostgreSQL) "
                              "while this worker runs it, 0 while it stands by", ["part"],
                              registry=r)
        self._outcomes = {"queued": self.notifications, "sent": self.sent,
                          "failed": self.failed, "dead": self.dead}
        self.started = time.time()
        self._included: list[Callable[[], str]] = []

    def include(self, render: Callable[[], str]) -> None:
        """Add ``render()``, Prometheus text with names of its own, to every :meth:`render`."""
        self._included.append(render)

    def leads(self, part: str, leading: Callable[[], bool]) -> None:
        """Show ``notifier_leading{part=...}`` as ``leading()`` says, when asked."""
        self._leading.labels(part=part).set_function(lambda: float(leading()))

    def outcome(self, destination: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` notifications of ``destination`` that were ``outcome``.

        ``outcome`` is ``queued``, ``sent``, ``failed`` or ``dead``.
        """
        self._outcomes[outcome].labels(destination=destination).inc(n)

    def restarted(self, component: str) -> None:
        """Count one restart of ``component`` after a failure."""
        self.restarts.labels(component=component).inc()

    def render(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry) + "".join(
            render() for render in self._included).encode()
