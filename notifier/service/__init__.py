"""``notifier serve``: the relay, the ingest loop, workers, digests and the HTTP server."""
