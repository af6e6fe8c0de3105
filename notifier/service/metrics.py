"""Prometheus metrics for one running service (its own registry, no globals)."""

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
                            "Notifications delivered, by backend", ["backend"], registry=r)
        self.failed = Counter("notifier_notifications_failed",
                              "Failed delivery attempts, by backend", ["backend"], registry=r)
        self.dead = Counter("notifier_notifications_dead",
                            "Notifications given up on, by backend", ["backend"], registry=r)
        depth = Gauge("notifier_outbox_depth", "Notifications waiting to be sent", registry=r)
        depth.set_function(outbox_depth)
        lag_gauge = Gauge("notifier_lag_seconds",
                          "Age of the oldest notification waiting to be sent", registry=r)
        lag_gauge.set_function(lag)
        self.last_message = Gauge("notifier_last_message_timestamp_seconds",
                                  "When the last bus message was received", registry=r)
        self.started = time.time()

    def outcome(self, backend: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` deliveries that ended in ``outcome`` (sent, failed, dead)."""
        {"sent": self.sent, "failed": self.failed, "dead": self.dead}[outcome] \
            .labels(backend=backend).inc(n)

    def render(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)
