"""The bridge's parts that need no broker: remembered ids, settings, and its command line."""

from __future__ import annotations

from click.testing import CliRunner

from notifier.bus.amqp_bridge import RecentIds, bridge_settings
from notifier.cli.bridge import bridge
from notifier.config import AmqpConfig


def test_recent_ids_forget_the_oldest_first() -> None:
    ids = RecentIds(size=3)
    for msg_id in ("a", "b", "c", "a", "d"):
        ids.add(msg_id)
    assert "a" in ids and "c" in ids and "d" in ids
    assert "b" not in ids


def test_bridge_settings_use_a_queue_of_its_own_and_no_mandatory() -> None:
    settings = bridge_settings(AmqpConfig(), "site.bridge", ["org.fedoraproject.prod.#"])
    assert settings.queue == "site.bridge"
    assert settings.dead_letter_queue == settings.dead_letter_exchange == "site.bridge.dead"
    assert settings.mandatory is False
    assert [(b.exchange, b.routing_keys) for b in settings.bindings] == \
        [("amq.topic", ("org.fedoraproject.prod.#",))]


def test_the_command_says_what_is_missing(tmp_path) -> None:
    config = tmp_path / "n.toml"
    config.write_text("")
    runner = CliRunner()
    result = runner.invoke(bridge, ["--config", str(config), "--amqp", "amqp://h/"])
    assert result.exit_code == 2 and "give --from-zmq, --to-zmq, or both" in result.output
    result = runner.invoke(bridge, ["--config", str(config), "--to-zmq", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "no AMQP broker" in result.output
    result = runner.invoke(bridge, ["--config", str(config), "--amqp", "amqp://h/",
                                    "--to-zmq", "amqp://h/"])
    assert result.exit_code == 2 and "is not a ZeroMQ address" in result.output
