"""``dev/setup``: what it installs when, run on a copy of the checkout.

The copy has the real script, setup.py, pyproject.toml, package.json and
package-lock.json; ``dpkg-query`` answers that every Debian package is
installed, ``node`` is there, and ``.venv/bin/python`` and ``npm`` only
record how they were called, so the test sees each pip and npm install the
script asks for without touching the network, the real virtual environment
or node_modules.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    copy = tmp_path / "checkout"
    (copy / "dev").mkdir(parents=True)
    shutil.copy2(ROOT / "dev" / "setup", copy / "dev" / "setup")
    for name in ("setup.py", "pyproject.toml", "package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, copy / name)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    (fake_bin / "node").write_text("#!/bin/sh\n")
    (fake_bin / "npm").write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path / "npm-calls"}"\n')
    venv_bin = copy / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path / "calls"}"\n')
    for script in (*fake_bin.iterdir(), venv_bin / "python"):
        script.chmod(0o755)
    return copy


def setup(checkout: Path, extras: str) -> list[str]:
    """Run dev/setup EXTRAS; return the extras of each editable install it made."""
    calls = checkout.parent / "calls"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{checkout.parent / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run([str(checkout / "dev" / "setup"), extras], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    made = calls.read_text().splitlines() if calls.exists() else []
    return [m.group(1) for line in made if (m := re.search(r"-e \.\[([^]]*)\]", line))]


def test_an_install_with_more_extras_satisfies_fewer(checkout: Path) -> None:
    assert setup(checkout, "all,test") == ["all,test"]
    assert setup(checkout, "all") == []  # ./dev/serve after ./dev/test
    assert setup(checkout, "all,test") == []  # and back
    assert setup(checkout, "test,all") == []
    # A new extra is installed with those already there, which stay recorded.
    assert setup(checkout, "postgres") == ["all,postgres,test"]
    assert setup(checkout, "all") == []
    # Changed inputs install again, with what is asked for.
    with (checkout / "setup.py").open("a") as fh:
        fh.write("\n# changed\n")
    assert setup(checkout, "all") == ["all"]
    assert setup(checkout, "all") == []


def npm_installs(checkout: Path) -> list[str]:
    """Run dev/setup; return the npm commands it ran."""
    calls = checkout.parent / "npm-calls"
    calls.unlink(missing_ok=True)
    setup(checkout, "all,test")
    return [line.split()[0] for line in calls.read_text().splitlines()] if calls.exists() else []


def test_npm_packages_install_when_the_lockfile_changes(checkout: Path) -> None:
    assert npm_installs(checkout) == ["ci"]  # from the lockfile, exactly
    assert npm_installs(checkout) == []
    with (checkout / "package-lock.json").open("a") as fh:
        fh.write("\n")
    assert npm_installs(checkout) == ["ci"]
    assert npm_installs(checkout) == []


def test_setup_never_kills_processes_by_name() -> None:
    text = (ROOT / "dev" / "setup").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert not re.search(r"\b(pkill|killall|kill)\b", code)
