"""notifier relay, notifier-logger and notifier-tail, run as the commands users run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.bus.publisher import Publisher
from notifier.config import Config, load_config
from tests.conftest import BIN, free_port, run, wait_for, wait_for_port
from tests.integration.tailproc import TailProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def relay_proc(config_file: Path, bus_config: Config) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([str(BIN / "notifier"), "relay", "--config", str(config_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_port(int(bus_config.bus.endpoints[0].rsplit(":", 1)[1]))
    wait_for_port(int(bus_config.bus.relay_inbound.rsplit(":", 1)[1]))
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def tail_json(config_file: Path, relay_proc: subprocess.Popen[str]) -> Iterator[TailProcess]:
    tail = TailProcess("--json", config=config_file)
    with Publisher(load_config(config_file)) as publisher:
        tail.wait_ready(publisher)
    yield tail
    tail.stop()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if int(p, 16) == port and state == "0A":
                found.add(addr)
    return found


def test_relay_binds_exactly_the_addresses_written(relay_proc: subprocess.Popen[str],
                                                    bus_config: Config) -> None:
    for address in (bus_config.bus.relay_inbound, bus_config.bus.endpoints[0]):
        port = int(address.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0


def test_relay_stops_cleanly_on_sigterm(relay_proc: subprocess.Popen[str]) -> None:
    relay_proc.send_signal(signal.SIGTERM)
    assert relay_proc.wait(10) == 0


def test_relay_reports_an_address_in_use(config_file: Path,
                                         relay_proc: subprocess.Popen[str]) -> None:
    result = run("notifier", "relay", "--config", str(config_file), timeout=20)
    assert result.returncode != 0
    assert "cannot bind [bus]" in result.stderr


def test_the_four_logger_forms(config_file: Path, tail_json: TailProcess) -> None:
    c = ["--config", str(config_file)]
    assert run("notifier-logger", "--modname=git", "--topic=repo.update", *c,
               input="Hello World.\n").returncode == 0
    assert run("notifier-logger", "--json-input", *c, input='{"a": 1}\n').returncode == 0
    assert run("notifier-logger", "--message=This is a message.", *c).returncode == 0
    assert run("notifier-logger", '--message={"a": 1}', "--json-input", *c).returncode == 0
    got = tail_json.take_json(4)
    assert [(e["topic"], e["msg"]) for e in got] == [
        ("org.fedoraproject.dev.git.repo.update", {"log": "Hello World."}),
        ("org.fedoraproject.dev.logger.log", {"a": 1}),
        ("org.fedoraproject.dev.logger.log", {"log": "This is a message."}),
        ("org.fedoraproject.dev.logger.log", {"a": 1}),
    ]
    assert all(e["msg_id"] and e["timestamp"] and e["i"] == 1 for e in got)


def test_stdin_lines_and_multiline_json(config_file: Path, tail_json: TailProcess) -> None:
    c = ["--config", str(config_file)]
    assert run("notifier-logger", *c, input="one\n\ntwo\n").returncode == 0
    doc = '{\n  "pretty": [1,\n 2]\n}\n{"x": 1} {"y": 2}\n'
    assert run("notifier-logger", "--json-input", *c, input=doc).returncode == 0
    got = [e["msg"] for e in tail_json.take_json(5)]
    assert got == [{"log": "one"}, {"log": "two"}, {"pretty": [1, 2]}, {"x": 1}, {"y": 2}]


def test_bad_json_names_the_line_and_loses_nothing_else(config_file: Path,
                                                        tail_json: TailProcess) -> None:
    doc = '{"ok": 1}\n{"bad": \n  nope}\n{"ok": 2}\n'
    result = run("notifier-logger", "--json-input", "--config", str(config_file), input=doc)
    assert result.returncode == 1
    assert "stdin line 3: invalid JSON" in result.stderr
    assert [e["msg"] for e in tail_json.take_json(2)] == [{"ok": 1}, {"ok": 2}]


def test_logger_without_relay_fails_naming_the_address(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "c.toml"
    config.write_text(f'[bus]\nrelay_inbound = "{address}"\n')
    started = time.monotonic()
    result = run("notifier-logger", "--message=x", "--timeout", "0.5", "--config", str(config))
    assert result.returncode != 0
    assert address in result.stderr
    # A relay alone would take the message and store it nowhere: the hint names serve.
    assert "is 'notifier serve' running?" in result.stderr
    assert "start it with 'notifier relay'" not in result.stderr
    assert time.monotonic() - started < 10


def test_bad_config_is_reported_with_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[bus]\nrelay_inbund = 'tcp://127.0.0.1:1'\n")
    for cmd in (["notifier-logger", "--message=x"], ["notifier-tail"],
                ["notifier", "relay"]):
        result = run(*cmd, "--config", str(config))
        assert result.returncode == 2, cmd
        assert str(config) in result.stderr and "bus.relay_inbund" in result.stderr, cmd


def test_tail_filters_and_terse(config_file: Path, relay_proc: subprocess.Popen[str]) -> None:
    tail = TailProcess("--terse", "--topic", "org.fedoraproject.dev.t",
                       "--exclude", r"\.skip$", "--include", r"keep|probe|end",
                       config=config_file)
    try:
        with Publisher(load_config(config_file)) as pub:
            tail.wait_ready(pub)
            pub.publish("a.skip", {"log": "skipped"}, modname="t")
            pub.publish("a.keep", {"log": "kept"}, modname="other")  # wrong prefix
            pub.publish("a.other", {"log": "not included"}, modname="t")
            pub.publish("a.keep", {"log": "kept one"}, modname="t")
            pub.publish("a.end", {"log": "the end"}, modname="t")
        assert tail.take(2) == ["org.fedoraproject.dev.t.a.keep kept one",
                                "org.fedoraproject.dev.t.a.end the end"]
    finally:
        tail.stop()


def test_tail_count_exits_after_n(config_file: Path, relay_proc: subprocess.Popen[str]) -> None:
    tail = TailProcess("--json", "--count", "3", config=config_file)
    with Publisher(load_config(config_file)) as pub:
        def exited() -> bool:
            if tail.proc.poll() is not None:
                return True
            pub.publish("tick", {"n": 1}, modname="t")  # another, until it has its three
            return False

        wait_for(exited, "notifier-tail --count 3 to exit", 10, interval=0.05)
    assert tail.proc.wait(5) == 0
    lines = []
    while not tail.lines.empty():
        lines.append(tail.lines.get())
    tail._reader.join(2)
    while not tail.lines.empty():
        lines.append(tail.lines.get())
    assert len(lines) == 3


def test_tail_timeout_exits_non_zero(config_file: Path,
                                     relay_proc: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    result = run("notifier-tail", "--timeout", "0.5", "--config", str(config_file))
    assert result.returncode == 1
    assert "nothing arrived in 0.5 s" in result.stderr
    assert time.monotonic() - started < 10


def test_tail_pretty_is_indented(config_file: Path, relay_proc: subprocess.Popen[str]) -> None:
    tail = TailProcess("--pretty", "--include", "pretty", config=config_file)
    try:
        with Publisher(load_config(config_file)) as pub:
            def printing() -> bool:
                if not tail.lines.empty():
                    return True
                pub.publish("pretty", {"k": "v"}, modname="t")  # another, until it prints
                return False

            wait_for(printing, "notifier-tail to print", 10, interval=0.05)
        first = tail.take(3)
        assert first[0] == "{" and first[1].startswith('  "')
    finally:
        tail.stop()


def test_seed_python_api(config_file: Path, tail_json: TailProcess) -> None:
    script = ("import notifier\n"
              "notifier.publish(topic='testing', modname='test', msg={'test': 'Hello World'})\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, env={"NOTIFIER_CONFIG": str(config_file),
                                             "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    (envelope,) = tail_json.take_json(1)
    assert envelope["topic"] == "org.fedoraproject.dev.test.testing"
    assert envelope["msg"] == {"test": "Hello World"}


def test_modname_defaults_to_the_callers_package(tmp_path: Path, config_file: Path,
                                                 tail_json: TailProcess) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import notifier\n\ndef go():\n    notifier.publish(topic='hello', msg={'x': 1})\n")
    result = subprocess.run([sys.executable, "-c", "import mypkg; mypkg.go()"],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path,
                            env={"NOTIFIER_CONFIG": str(config_file), "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert tail_json.take_json(1)[0]["topic"] == "org.fedoraproject.dev.mypkg.hello"


def test_help_is_helpful() -> None:
    for cmd in (["notifier", "--help"], ["notifier", "relay", "--help"],
                ["notifier-logger", "--help"], ["notifier-tail", "--help"]):
        result = run(*cmd)
        assert result.returncode == 0
        assert "--config" in result.stdout or "relay" in result.stdout
    logger_help = run("notifier-logger", "--help").stdout
    for flag in ("--message", "--json-input", "--topic", "--modname", "--timeout"):
        assert flag in logger_help
    tail_help = run("notifier-tail", "--help").stdout
    for flag in ("--topic", "--include", "--exclude", "--json", "--pretty", "--terse",
                 "--count", "--timeout", "--validate"):
        assert flag in tail_help
