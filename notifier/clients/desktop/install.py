"""``notifier-desktop install-autostart``: an XDG autostart entry or a systemd user unit,
and the icon in the hicolor theme."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from .config import config_home

HERE = Path(__file__).resolve().parent
ICON = HERE / "data" / "icons" / "hicolor" / "scalable" / "apps" / "notifier-desktop.svg"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def desktop_entry(command: str) -> str:
    return ("[Desktop Entry]\nType=Application\nName=notifier\n"
            "Comment=Desktop notifications from notifier\n"
            f"Exec={command}\nIcon=notifier-desktop\nTerminal=false\n"
            "Categories=Network;\nX-GNOME-Autostart-enabled=true\n")


def systemd_unit(command: str) -> str:
    return ("[Unit]\nDescription=Desktop notifications from notifier\n"
            "PartOf=graphical-session.target\nAfter=graphical-session.target\n\n"
            f"[Service]\nExecStart={command}\nRestart=on-failure\nRestartSec=5\n\n"
            "[Install]\nWantedBy=graphical-session.target\n")


def install(program: str, config_path: Path | None, *, systemd: bool) -> list[Path]:
    """Write the files; the paths written."""
    command = shlex.join([program] + (["--config", str(config_path)] if config_path else []))
    written = []
    icon = data_home() / "icons" / "hicolor" / "scalable" / "apps" / ICON.name
    icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ICON, icon)
    written.append(icon)
    if systemd:
        path = config_home() / "systemd" / "user" / "notifier-desktop.service"
        text = systemd_unit(command)
    else:
        path = config_home() / "autostart" / "notifier-desktop.desktop"
        text = desktop_entry(command)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    written.append(path)
    return written
