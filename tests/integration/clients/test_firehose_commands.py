"""``notifier firehose`` as its own command, and inside ``notifier serve`` with
``[firehose] enabled = true``: real processes, a real ngircd, a watcher in the channel."""

from __future__ import annotations

import itertools
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, free_port, wait_for
from tests.integration.backends.peers_irc import IrcServer
from tests.integration.rawbus import RawPublisher
from tests.integration.serveproc import ServeProcess

from .firehose_peers import Bus, Watcher

pytestmark = pytest.mark.integration


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[IrcServer]:
    server = IrcServer("ngircd", tmp_path / "ngircd").start()
    try:
        yield server
    finally:
        server.stop()


def firehose_toml(port: int, metrics: str) -> str:
    return f"""
[firehose]
enabled = true
metrics_listen = "{metrics}"
[[firehose.networks]]
name = "test"
host = "127.0.0.1"
port = {port}
nick = "firehose"
line_rate = 2.0
[[firehose.networks.channels]]
name = "#fh"
exclude = {{summary = "^probe"}}
"""


def publish_until_seen(publisher: RawPublisher, watcher: Watcher, what: str) -> None:
    """Publish probes (the channel leaves them out), then a line once the bot gets probes."""
    count = itertools.count()

    def seen() -> bool:
        if watcher.texts("#fh"):
            return True
        n = next(count)
        body = {"log": "probe" if n % 2 else "hello from the bus"}
        publisher.send(*publisher.builder.encode("koji", "buildsys.tag", body))
        return False

    wait_for(seen, what, 30, interval=0.3)


def test_notifier_firehose_runs_alone(tmp_path: Path, ngircd: IrcServer) -> None:
    bus = Bus()
    metrics = f"127.0.0.1:{free_port()}"
    config = tmp_path / "notifier.toml"
    config.write_text(f'[bus]\nendpoints = ["{bus.outbound}"]\n' + firehose_toml(ngircd.port,
                                                                                 metrics))
    watcher = Watcher(ngircd.port, "watcher", ["#fh"])
    log = tmp_path / "firehose.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "notifier"), "firehose", "--config", str(config)],
                                stdout=out, stderr=out)
    try:
        publish_until_seen(bus.publisher, watcher, "a line from notifier firehose")
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5) as r:
            body = r.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        watcher.close()
        bus.close()
    assert watcher.texts("#fh")[0] == "\x0302[koji]\x03 hello from the bus"
    assert 'notifier_firehose_lines_total{network="test",channel="#fh"}' in body
    assert 'notifier_firehose_connected{network="test"} 1' in body


@pytest.mark.parametrize("process", [False, True], ids=["http-thread", "http-process"])
def test_firehose_enabled_runs_inside_notifier_serve_and_counts_on_its_metrics(
        tmp_path: Path, ngircd: IrcServer, process: bool) -> None:
    inbound, outbound = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    http = f"127.0.0.1:{free_port()}"
    config = tmp_path / "notifier.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "notifier.db"}"\n'
        f'[bus]\nrelay_inbound = "{inbound}"\nendpoints = ["{outbound}"]\n'
        f'[http]\nlisten = "{http}"\nprocess = {str(process).lower()}\n'
        f'[delivery]\nsender_process = false\n'
        + firehose_toml(ngircd.port, ""))
    watcher = Watcher(ngircd.port, "watcher", ["#fh"])
    serve = ServeProcess(config, http, tmp_path / "serve.log")
    try:
        serve.start(30)
        publisher = RawPublisher(inbound)
        try:
            publish_until_seen(publisher, watcher, "a line from notifier serve's firehose")
        finally:
            publisher.close()
        status, _, body = serve.get("/healthz/ready")

        def counted() -> str | None:
            # the bot's count of lines posted, once the watcher saw as many
            text = serve.get("/metrics")[2].decode()
            posted = len(watcher.texts("#fh"))
            line = f'notifier_firehose_lines_total{{network="test",channel="#fh"}} {posted}\n'
            return text if line in text else None

        text = wait_for(counted, "the firehose's lines on serve's /metrics", 10)
        assert serve.stop() == 0, serve.log()
    finally:
        serve.ensure_stopped()
        watcher.close()
    assert watcher.texts("#fh")[0] == "\x0302[koji]\x03 hello from the bus"
    assert b"firehose" in body, body
    assert 'notifier_firehose_messages_posted_total{network="test",channel="#fh"} ' in text
    assert 'notifier_firehose_connected{network="test"} 1' in text
    assert "notifier_messages_received_total" in text  # serve's own, in the same answer
