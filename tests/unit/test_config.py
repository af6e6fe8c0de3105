"""Configuration: file order, validation, messages that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import Config, config_from_dict, load_config, parse_duration
from notifier.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_work_on_one_machine(tmp_path: Path) -> None:
    config = load_config(environ={"HOME": str(tmp_path)})
    assert config.topic_prefix == "org.fedoraproject"
    assert config.environment == "dev"
    assert config.sign_messages is False and config.validate_signatures is False
    assert config.bus.relay_inbound == "tcp://127.0.0.1:9941"
    assert config.bus.endpoints == ("tcp://127.0.0.1:9940",)
    assert config.sources == ()


def test_explicit_path_beats_environment(tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", 'environment = "a"\n')
    b = write(tmp_path / "b.toml", 'environment = "b"\n')
    assert load_config(a, environ={"NOTIFIER_CONFIG": str(b)}).environment == "a"
    assert load_config(None, environ={"NOTIFIER_CONFIG": str(b)}).environment == "b"


def test_user_file_overlays_system_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = write(tmp_path / "etc" / "notifier.toml",
                   'environment = "prod"\n[bus]\nrelay_inbound = "tcp://127.0.0.1:1"\n')
    write(tmp_path / "home" / ".config" / "notifier" / "notifier.toml",
          '[bus]\nendpoints = ["tcp://127.0.0.1:2"]\n')
    monkeypatch.setattr("notifier.config.SYSTEM_CONFIG", system)
    config = load_config(environ={"HOME": str(tmp_path / "home")})
    assert config.environment == "prod"
    assert config.bus.relay_inbound == "tcp://127.0.0.1:1"  # kept from the system file
    assert config.bus.endpoints == ("tcp://127.0.0.1:2",)
    assert len(config.sources) == 2


def test_unknown_key_names_key_file_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path / "n.toml", '[bus]\nendpoint = ["tcp://127.0.0.1:2"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "'bus.endpoint'" in str(err.value)
    assert "did you mean 'bus.endpoints'" in str(err.value)


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path / "n.toml", "[buss]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'buss'.*did you mean 'bus'"):
        load_config(path)


@pytest.mark.parametrize("text, key, expected", [
    ("sign_messages = 'yes'\n", "sign_messages", "boolean"),
    ("[bus]\nendpoints = 'tcp://x:1'\n", "bus.endpoints", "array of strings"),
    ("[bus]\nendpoints = [1]\n", "bus.endpoints[0]", "string"),
    ("[bus]\nhigh_water_mark = true\n", "bus.high_water_mark", "integer"),
    ("topic_prefix = 3\n", "topic_prefix", "string"),
    ("[history]\nretention = 'forever'\n", "history.retention", "duration"),
])
def test_wrong_type_names_key_and_file(tmp_path: Path, text: str, key: str, expected: str) -> None:
    path = write(tmp_path / "n.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: '{key}'")
    assert expected in message


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path / "bad.toml", "[bus\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "conf" / "n.toml", '[crypto]\ncertificate = "certs/me.crt"\n')
    assert load_config(path).crypto.certificate == str(tmp_path / "conf" / "certs" / "me.crt")


def test_integers_are_accepted_for_floats() -> None:
    assert config_from_dict({"bus": {"publish_timeout": 2}}).bus.publish_timeout == 2.0


def test_shipped_example_covers_every_key() -> None:
    example = Path(__file__).resolve().parents[2] / "conf" / "notifier.toml"
    config = load_config(example)
    assert isinstance(config, Config)
    text = example.read_text()
    # Every key of every section appears (commented or not) in the example.
    for key in _all_keys(Config):
        assert f"{key} =" in text, f"conf/notifier.toml does not show '{key}'"


def _all_keys(cls: type) -> list[str]:
    import dataclasses
    import typing

    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        args = typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            out += _all_keys(tp)
        elif args and dataclasses.is_dataclass(args[0]):
            out += _all_keys(args[0])
        else:
            out.append(f.name)
    return out


def test_parse_duration() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("15m") == 900
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(ValueError):
        parse_duration("7 days")


@pytest.mark.parametrize(("section", "data", "expected"), [
    ("http", {"trusted_proxies": ["10.0.0.0/33"]},
     r"'http.trusted_proxies\[0\]'.*IP address or network"),
    ("web", {"admins": ["al ice"]}, r"'web.admins\[0\]'.*user name or @group"),
    ("web", {"session_ttl": "two weeks"}, r"'web.session_ttl'.*duration"),
])
def test_web_settings_are_checked(section: str, data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        config_from_dict({section: data}, "site.toml")


def test_admins_are_users_or_groups() -> None:
    web = config_from_dict({"web": {"admins": ["alice", "@sysadmin"]}}, "site.toml").web
    assert web.is_admin("alice", [])
    assert web.is_admin("bob", ["sysadmin"])
    assert not web.is_admin("bob", ["packager"])
    assert not web.is_admin("sysadmin", [])


def test_a_confirm_window_below_one_is_refused_naming_key_and_file(tmp_path: Path) -> None:
    conf = tmp_path / "n.toml"
    conf.write_text("[bus.amqp]\nconfirm_window = 0\n")
    with pytest.raises(ConfigError, match=r"n\.toml.*bus\.amqp\.confirm_window.*at least 1"):
        load_config(conf)
    conf.write_text("[bus.amqp]\nconfirm_window = 1\n")
    assert load_config(conf).bus.amqp.confirm_window == 1
