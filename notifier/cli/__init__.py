"""Command-line interfaces: notifier, notifier-logger, notifier-tail."""
