"""The firehose's counters, by network and channel, as Prometheus text on ``/metrics``.

* ``notifier_firehose_lines_total{network,channel}``: lines posted;
* ``notifier_firehose_messages_posted_total``: messages posted on a line of their own;
* ``notifier_firehose_messages_folded_total``: messages counted in a fold line;
* ``notifier_firehose_fold_lines_total``: fold lines posted;
* ``notifier_firehose_messages_dropped_total``: messages dropped (a paused
  channel, a queue over its bound);
* ``notifier_firehose_lines_refused_total``: lines the server refused (404);
* ``notifier_firehose_lines_resent_total``: lines written but not confirmed by the
  server before the connection was lost, queued to be posted again (their messages
  count again in ``posted``/``folded`` when they are);
* ``notifier_firehose_disconnects_total{network}`` and ``notifier_firehose_connected{network}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

_HELP = {
    "lines": "Lines posted to the channel.",
    "posted": "Messages posted on a line of their own.",
    "folded": "Messages counted in a fold line.",
    "fold_lines": "Fold lines posted.",
    "dropped": "Messages dropped: channel paused, or queue over its bound.",
    "refused": "Lines the server refused to relay.",
    "resent": "Lines not confirmed before a connection loss, queued to be posted again.",
    "disconnects": "Connections to the network lost.",
}
_NAMES = {"lines": "lines", "posted": "messages_posted", "folded": "messages_folded",
          "fold_lines": "fold_lines", "dropped": "messages_dropped",
          "refused": "lines_refused", "resent": "lines_resent",
          "disconnects": "disconnects"}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class FirehoseMetrics:
    """Thread-safe counters keyed by ``(network, channel, kind)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self.connected: Callable[[], dict[str, bool]] = dict

    def count(self, network: str, channel: str, kind: str, n: int = 1) -> None:
        """Add ``n`` to one counter."""
        with self._lock:
            key = (network, channel, kind)
            self._counts[key] = self._counts.get(key, 0) + n

    def posted(self, network: str, channel: str, alone: int, folded: int) -> None:
        """One line posted: ``alone`` messages on their own, ``folded`` in a fold."""
        with self._lock:
            for kind, n in (("lines", 1), ("posted", alone), ("folded", folded),
                            ("fold_lines", 1 if folded else 0)):
                key = (network, channel, kind)
                self._counts[key] = self._counts.get(key, 0) + n

    def get(self, network: str, channel: str, kind: str) -> int:
        """The value of one counter."""
        with self._lock:
            return self._counts.get((network, channel, kind), 0)

    def render(self) -> str:
        """Every counter in the Prometheus text format."""
        with self._lock:
            counts = dict(self._counts)
        out = []
        for kind, name in _NAMES.items():
            metric = f"notifier_firehose_{name}_total"
            out += [f"# HELP {metric} {_HELP[kind]}", f"# TYPE {metric} counter"]
            for (network, channel, k), n in sorted(counts.items()):
                if k != kind:
                    continue
                labels = f'network="{_label(network)}"'
                if kind != "disconnects":
                    labels += f',channel="{_label(channel)}"'
                out.append(f"{metric}{{{labels}}} {n}")
        out += ["# HELP notifier_firehose_connected 1 while registered with the network.",
                "# TYPE notifier_firehose_connected gauge"]
        for network, up in sorted(self.connected().items()):
            out.append(f'notifier_firehose_connected{{network="{_label(network)}"}} {int(up)}')
        return "\n".join(out) + "\n"


class MetricsServer:
    """``GET /metrics`` on ``host:port``, in a thread; :meth:`close` stops it."""

    def __init__(self, listen: str, metrics: FirehoseMetrics):
        host, _, port = listen.rpartition(":")
        render = metrics.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="firehose-metrics",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
