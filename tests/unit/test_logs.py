"""Logging to stderr: one format, and the chosen level holds for every record."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, sys
from notifier.logs import log_to_stderr

class Demote(logging.Filter):
    # As fedmsg.meta's FAS warnings are turned into debug records, after the logger's check.
    def filter(self, record):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True

log_to_stderr(logging.DEBUG if sys.argv[1] == "debug" else logging.INFO)
library = logging.getLogger("some.library")
library.addFilter(Demote())
library.warning("demoted")
logging.getLogger("notifier.x").info("kept")
"""


def stderr_lines(level: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, level], capture_output=True,
                            text=True, timeout=30, check=True)
    return [line.split(" ", 2)[2] for line in result.stderr.splitlines()]


def test_a_record_demoted_below_the_level_is_not_shown() -> None:
    assert stderr_lines("info") == ["INFO notifier.x: kept"]
    assert stderr_lines("debug") == ["DEBUG some.library: demoted", "INFO notifier.x: kept"]
