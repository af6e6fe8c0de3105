"""How notifier's programs log: one line per record, to stderr, in one format."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr(level: int) -> None:
    """Send records of ``level`` and above to stderr (``notifier serve`` and its children)."""
    root = logging.getLogger()
    fresh = not root.handlers
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)
    if fresh:
        # The handler checks the level again: a library's filter may lower a record's
        # level after its logger let it through (fedmsg.meta's FAS warnings become debug).
        root.handlers[0].setLevel(level)
    # Alembic announces its dialect on every start; only its warnings matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
