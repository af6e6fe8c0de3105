"""Running notifier's commands from tests: in this process, or as the installed script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from notifier.cli.main import cli
from tests.conftest import run


class Outcome:
    """What a command did: exit status and output, however it was run."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def notifier(conf: Path, *args: str, input: str | None = None) -> Outcome:
    """Run ``notifier ARGS --config CONF`` in this process (no start-up cost)."""
    result = CliRunner().invoke(cli, [*args, "--config", str(conf)], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def notifier_process(conf: Path, *args: str, input: str | None = None) -> Outcome:
    """Run the installed ``notifier`` console script."""
    result = run("notifier", *args, "--config", str(conf), input=input)
    return Outcome(result.returncode, result.stdout, result.stderr)
