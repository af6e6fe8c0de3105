"""The wheel works outside the checkout, with backends and templates inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from notifier.storage.migrate import head_revision
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True,
                   timeout=300, cwd=ROOT)
    (built,) = out.glob("notifier-*.whl")
    return built


def test_wheel_has_no_generic_top_level_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("notifier-")}
    assert tops == {"notifier"}
    assert "notifier/backends/base.py" in names
    assert "notifier/storage/migrations/versions/0001_initial.py" in names
    assert any(n.startswith("notifier/templates/email/") for n in names)
    assert {"notifier/templates/web/base.html", "notifier/templates/web/static/style.css"} \
        <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("notifier =", "notifier-logger =", "notifier-tail ="):
        assert script in text


def test_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    assert not (target / "backends").exists() and not (target / "templates").exists()
    code = (
        "import notifier, notifier.backends.base, notifier.templates\n"
        "from importlib.resources import files\n"
        "from notifier.storage import Store\n"
        "print(notifier.__file__)\n"
        "print(notifier.backends.base.__file__)\n"
        "print(sorted(p.name for p in files('notifier.templates').iterdir()))\n"
        "s = Store('sqlite:///' + __import__('os').path.join(__import__('sys').argv[1], 'n.db'))\n"
        "print(s.revision())\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(target / "notifier"))
    assert lines[1].startswith(str(target / "notifier" / "backends"))
    assert "email" in lines[2] and "irc" in lines[2]
    assert lines[3] == head_revision()
    for script in ("notifier", "notifier-logger", "notifier-tail"):
        run = subprocess.run([str(target / "bin" / script), "--help"], capture_output=True,
                             text=True, cwd=tmp_path, env=env, timeout=60)
        assert run.returncode == 0, run.stderr
        assert "--config" in run.stdout or "serve" in run.stdout
