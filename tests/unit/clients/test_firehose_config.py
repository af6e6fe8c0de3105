"""``[firehose]`` is validated like the rest; ``notifier firehose`` refuses bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from notifier.cli.main import cli
from notifier.config import ConfigError, load_config

GOOD = """
[firehose]
colors = ["koji=green", "bodhi=4"]
[[firehose.networks]]
host = "irc.example.org"
tls = true
sasl_username = "bot"
sasl_password = "secret"
[[firehose.networks.channels]]
name = "#fedora-fedmsg"
max_delay = 20
include = {applications = ["koji"], severities = ["info", "error"]}
exclude = {summary = "^scratch", topics = ["*.buildsys.rpm.sign"]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(text)
    return path


def test_a_good_section_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    (network,) = config.firehose.networks
    (channel,) = network.channels
    assert network.tls and network.line_rate == 1.0 and channel.method == "notice"
    assert channel.include.applications == ("koji",) and channel.exclude.summary == "^scratch"
    assert channel.max_delay == 20.0 and not config.firehose.enabled


@pytest.mark.parametrize(("change", "words"), [
    (("max_delay = 20", "max_dealy = 20"), ["unknown key", "max_dealy", "did you mean"]),
    (('"koji=green"', '"koji=mauve"'), ["firehose.colors[0]", "mauve"]),
    (('"^scratch"', '"(unclosed"'), ["firehose.networks[0].channels[0].exclude.summary",
                                     "not a regular expression"]),
    (('"info", "error"', '"info", "fatal"'), ["severities[1]", "fatal"]),
    (('name = "#fedora-fedmsg"', 'name = "fedora"'), ["channels[0].name", "not a channel"]),
    (('max_delay = 20', 'method = "shout"'), ["method", "notice or privmsg"]),
    (('host = "irc.example.org"', 'port = 6697'), ["missing required key", "host"]),
    (("[firehose]\n", '[firehose]\nmetrics_listen = "9945"\n'), ["metrics_listen", "host:port"]),
])
def test_a_bad_key_is_refused_naming_it_and_the_file(
        tmp_path: Path, change: tuple[str, str], words: list[str]) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_the_command_refuses_a_config_with_nowhere_to_post(tmp_path: Path) -> None:
    path = write(tmp_path, "[firehose]\nenabled = true\n")
    result = CliRunner().invoke(cli, ["firehose", "--config", str(path)])
    assert result.exit_code == 1
    assert "[[firehose.networks]]" in result.output and str(path) in result.output


def test_the_command_is_listed() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "firehose" in result.output
