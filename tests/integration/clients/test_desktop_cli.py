"""``notifier-desktop``'s commands: --help, setup (trying the token on a real server),
install-autostart, and a bad config file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server
from .peers import App, PrivateBus

pytestmark = pytest.mark.integration


def test_help_explains_the_two_modes(bus: PrivateBus, make_app: Any) -> None:
    app: App = make_app("")
    result = app.run("--help")
    assert result.returncode == 0
    assert 'mode = "server"' in result.stdout and 'mode = "bus"' in result.stdout
    assert "org.fedoraproject.notifier.Desktop" in result.stdout


def test_setup_checks_the_token_on_the_server_and_writes_the_file(
        server: Server, bus: PrivateBus, make_app: Any) -> None:
    app: App = make_app("")
    app.config.unlink()
    wrong = app.run("setup", "--url", server.url, "--user", "alice", "--token", "nope")
    assert wrong.returncode == 1
    assert "knows no user 'alice' with that token" in wrong.stderr
    assert not app.config.exists()
    for token in (server.read_token, server.feed_token):
        result = app.run("setup", "--url", server.url + "/", "--user", "alice",
                         "--token", token, "--api-token", server.write_token)
        assert result.returncode == 0, result.stderr
        data = tomllib.loads(app.config.read_text())
        assert data["server"] == {"url": server.url, "user": "alice", "token": token,
                                  "api_token": server.write_token, "web_url": ""}
        assert app.config.stat().st_mode & 0o777 == 0o600


def test_a_bad_config_file_is_refused_naming_the_file_and_key(
        bus: PrivateBus, make_app: Any) -> None:
    app: App = make_app('[server]\nurl = "https://n.example.org"\nuser = "alice"\n'
                        'token = "t"\ntokn = "x"\n')
    result = app.run()
    assert result.returncode == 1
    assert f"{app.config}: [server] unknown key 'tokn'; did you mean 'token'?" in result.stderr
    assert not bus.owned("org.fedoraproject.notifier.Desktop")


def test_install_autostart_writes_the_entry_the_unit_and_the_icon(
        bus: PrivateBus, make_app: Any) -> None:
    app: App = make_app("")
    result = app.run("install-autostart")
    assert result.returncode == 0, result.stderr
    home = app.home
    entry = (home / "config" / "autostart" / "notifier-desktop.desktop").read_text()
    assert "[Desktop Entry]" in entry and "Icon=notifier-desktop" in entry
    assert "Exec=" in entry and "notifier-desktop" in entry.split("Exec=")[1]
    icon = home / "data" / "icons" / "hicolor" / "scalable" / "apps" / "notifier-desktop.svg"
    assert icon.read_text().startswith("<svg")
    result = app.run("install-autostart", "--systemd")
    assert result.returncode == 0, result.stderr
    unit = (home / "config" / "systemd" / "user" / "notifier-desktop.service").read_text()
    assert "ExecStart=" in unit and "WantedBy=graphical-session.target" in unit
    assert "systemctl --user enable --now" in result.stdout


def test_without_a_session_bus_it_says_so(tmp_path: Path, bus: PrivateBus,
                                          make_app: Any) -> None:
    app: App = make_app('[server]\nurl = "https://n.example.org"\nuser = "a"\ntoken = "t"\n')
    app.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={tmp_path / 'nothing'}"
    result = app.run()
    assert result.returncode == 1
    assert "no D-Bus session bus" in result.stderr
