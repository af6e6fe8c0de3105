"""The wheel carries ``notifier-desktop``: its console script and its icons."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_the_wheel_has_the_script_and_the_icons(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True,
                   timeout=300, cwd=ROOT)
    (wheel,) = tmp_path.glob("notifier-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    icons = "notifier/clients/desktop/data/icons/hicolor/scalable/apps/"
    assert {icons + "notifier-desktop.svg", icons + "notifier-desktop-attention.svg",
            "notifier/clients/desktop/app.py"} <= names
    assert b"notifier-desktop = notifier.clients.desktop.cli:main" in entry_points
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert "Provides-Extra: desktop" in zipfile.ZipFile(wheel).read(metadata).decode()
