"""notifier-desktop's config file: checked whole, each problem naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.clients.desktop import config as settings

GOOD = {"server": {"url": "https://notify.example.org/", "user": "alice", "token": "t"}}


def problems(data: dict, path: str = "/home/a/desktop.toml") -> str:
    with pytest.raises(settings.ConfigError) as caught:
        settings.parse(data, path)
    return str(caught.value)


def test_a_minimal_file_gets_the_defaults() -> None:
    config = settings.parse(GOOD, "d.toml")
    assert config.mode == "server"
    assert config.server.url == "https://notify.example.org"
    assert config.server.stream_url() == "https://notify.example.org/users/alice/stream"
    assert config.notifications.burst == 5 and config.notifications.burst_window == 10
    # without a write token "Open notifier" opens the feed
    assert config.server.open_url() == "https://notify.example.org/feeds/alice.atom?token=t"
    with_api = settings.parse({"server": {**GOOD["server"], "api_token": "w"}}, "d.toml")
    assert with_api.server.open_url() == "https://notify.example.org/"


def test_an_unknown_key_names_the_key_the_file_and_the_nearest_word() -> None:
    text = problems({**GOOD, "notifications": {"brust": 3}})
    assert text == ("/home/a/desktop.toml: [notifications] unknown key 'brust'; "
                    "did you mean 'burst'?")
    assert "unknown key 'serveur'" in problems({"serveur": {}, **GOOD})


def test_every_problem_is_reported_at_once() -> None:
    text = problems({"server": {"url": "ftp://x", "token": 3},
                     "notifications": {"burst": 0, "do_not_disturb": "yes"}})
    lines = text.splitlines()
    assert all(line.startswith("/home/a/desktop.toml: ") for line in lines)
    for expected in ("[server] url must be an http or https address, not 'ftp://x'",
                     "[server] token must be str, not int",
                     "[server] user is missing",
                     "[notifications] burst must be 1 to 1000, not 0",
                     "[notifications] do_not_disturb must be bool, not str"):
        assert any(expected in line for line in lines), (expected, lines)


def test_an_unknown_mode() -> None:
    assert "mode must be one of server, bus, not 'cloud'" in problems({**GOOD, "mode": "cloud"})


def test_booleans_are_not_numbers() -> None:
    assert "burst must be int, not a boolean" in problems(
        {**GOOD, "notifications": {"burst": True}})


def test_bus_mode_needs_endpoints() -> None:
    assert "[bus] endpoints is missing" in problems({"mode": "bus"})
    config = settings.parse({"mode": "bus", "bus": {"endpoints": ["tcp://127.0.0.1:9940"]}},
                            "d.toml")
    assert config.bus.endpoints == ("tcp://127.0.0.1:9940",)


def test_load_reads_toml_and_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "desktop.toml"
    with pytest.raises(settings.ConfigError, match="no such file; write it with"):
        settings.load(path)
    path.write_text("mode = \n")
    with pytest.raises(settings.ConfigError, match="not valid TOML"):
        settings.load(path)


def test_write_makes_a_private_file_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "notifier" / "desktop.toml"
    settings.write(path, "https://n.example.org/", "alice", 'to"k\\en\n\u00e9', "w")
    assert path.stat().st_mode & 0o777 == 0o600
    config = settings.load(path)
    assert (config.server.url, config.server.user, config.server.token,
            config.server.api_token) == ("https://n.example.org", "alice", 'to"k\\en\n\u00e9', "w")
