"""The ingest loop in process, on a real relay and database.

What it must survive: a database that cannot be used (nothing rejected,
nothing lost, health told), a crash of its own loop (restartable, the batch
kept), a flood of bad messages (one transaction a batch, a bounded log), and
signed messages normalised only after their signature was checked.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.bus.envelope import canonical_json
from notifier.bus.relay import Relay
from notifier.bus.transports import open_subscriber
from notifier.config import Config, config_from_dict
from notifier.delivery import ingest as ingest_module
from notifier.delivery.dispatch import Dispatcher
from notifier.delivery.ingest import Ingest
from notifier.delivery.pipeline import Pipeline
from notifier.errors import StorageUnavailableError
from notifier.meta import Describer
from notifier.render import Renderer
from notifier.rules.matcher import Matcher
from notifier.service.metrics import Metrics
from notifier.storage import Store
from notifier.storage.outbox import Outbox
from notifier.storage.rejected import RejectedStore
from tests.conftest import free_port, wait_for
from tests.integration.certs import Pki
from tests.integration.rawbus import TOPIC_GLOB, RawPublisher

pytestmark = pytest.mark.integration

TOPIC = b"org.fedoraproject.dev.hostile.thing.happened"
WAIT = 20.0


class Harness:
    """A relay, an ingest thread and a publisher, on ``config``'s addresses."""

    def __init__(self, config: Config, store: Store, validator: Any = None):
        self.config = config
        self.store = store
        store.import_users([{"name": "alice", "emails": ["alice@example.org"]}])
        store.upsert_rules([{"user": "alice", "name": "all",
                             "track": {"kind": "topics", "patterns": [TOPIC_GLOB]},
                             "destinations": ["email"]}])
        self.outbox = Outbox(store)
        self.pipeline = Pipeline(config, self.outbox, Describer(config, schemas={}),
                                 Matcher.from_store(store), Renderer(config, secret=b"s" * 32),
                                 store.get_user)
        self.metrics = Metrics(outbox_depth=lambda: 0.0, lag=lambda: 0.0)
        self.dispatcher = Dispatcher(config, self.outbox, in_memory=False,
                                     on_result=self.metrics.outcome, backends={})
        self.relay = Relay.from_config(config)
        self.relay_thread = self.relay.start_thread()
        self.subscriber = open_subscriber(config.bus.endpoints, ("",),
                                          config.bus.high_water_mark,
                                          config.bus.frame_limit(config.max_message_bytes))
        self.ingest = Ingest(config, self.subscriber, self.pipeline, self.dispatcher,
                             self.metrics, validator=validator)
        self.ingest.stall_after = 0.5
        self.ingest.retry_base, self.ingest.retry_cap = 0.05, 0.2
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self.publisher = RawPublisher(config.bus.relay_inbound)

    def start(self) -> None:
        def run() -> None:
            try:
                self.ingest.run(self.stopping)
            except BaseException as exc:  # what a supervisor would see
                self.errors.append(exc)

        self.thread = threading.Thread(target=run, name="ingest", daemon=True)
        self.thread.start()

    def flowing(self) -> None:
        """Publish probes until one is stored: our subscriber is connected to the relay."""
        sent: list[str] = []

        def stored() -> bool:
            if self.stored() & set(sent):
                return True
            sent.append(self.publisher.good(f"probe {len(sent)}"))  # another, until one is
            return False

        wait_for(stored, "a probe through the relay", interval=0.05)

    def stored(self) -> set[str]:
        return {m.msg_id for m in self.store.message_rows()}

    def rejected_count(self) -> float:
        return sum(s.value for metric in self.metrics.rejected.collect()
                   for s in metric.samples if s.name.endswith("_total"))

    def close(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(10)
        self.publisher.close()
        self.relay.stop()
        self.relay_thread.join(5)
        self.subscriber.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "meta": {"use_fedmsg_meta": False, "use_fedora_messaging": False},
        "bus": {"relay_inbound": f"tcp://127.0.0.1:{free_port()}",
                "endpoints": [f"tcp://127.0.0.1:{free_port()}"]},
    }, str(tmp_path / "notifier.toml"))


@pytest.fixture
def harness(config: Config) -> Iterator[Harness]:
    store = Store(config.resolved_database_url())
    h = Harness(config, store)
    try:
        yield h
    finally:
        h.close()
        store.close()


def test_an_unusable_database_keeps_the_batch_until_it_is_back(
        harness: Harness, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    harness.start()
    harness.flowing()
    down = threading.Event()
    down.set()
    original = harness.outbox.record_and_claim
    failed: list[int] = []

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        if down.is_set():
            failed.append(1)
            raise StorageUnavailableError("sqlite:///n.db: cannot record: disk I/O error")
        return original(*args, **kwargs)

    monkeypatch.setattr(harness.outbox, "record_and_claim", unavailable)
    with caplog.at_level(logging.INFO, logger="notifier.delivery.ingest"):
        sent = [harness.publisher.good(f"during {n}") for n in range(30)]
        reason = wait_for(lambda: "waited" in (harness.ingest.stalled() or "")
                          and harness.ingest.stalled(), what="stalled() to say why")
        assert "messages have waited" in reason and "disk I/O error" in reason
        # Several more attempts fail meanwhile: still one line in the log (checked below).
        before = len(failed)
        wait_for(lambda: len(failed) >= before + 3, "three more failed attempts to record")
        down.clear()
        wait_for(lambda: set(sent) <= harness.stored(), what="every message recorded")
    assert harness.ingest.stalled() is None
    assert harness.rejected_count() == 0
    told = [r.getMessage() for r in caplog.records]
    assert sum("cannot record" in m for m in told) == 1, told
    assert sum(m.startswith("the database can be used again") for m in told) == 1, told
    assert harness.errors == []


def test_stalled_says_when_the_loop_stops_turning(harness: Harness,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    harness.start()
    harness.flowing()
    assert harness.ingest.stalled() is None
    release = threading.Event()
    original = harness.pipeline.prepare

    def slow(envelopes: list[dict[str, Any]]) -> Any:
        release.wait(WAIT)
        return original(envelopes)

    monkeypatch.setattr(harness.pipeline, "prepare", slow)
    msg_id = harness.publisher.good("slow")
    reason = wait_for(harness.ingest.stalled, what="stalled() to say why")
    assert "has not turned" in reason
    release.set()
    wait_for(lambda: msg_id in harness.stored(), what="the slow message recorded")
    wait_for(lambda: harness.ingest.stalled() is None, what="stalled() to clear")


def test_run_is_restartable_and_keeps_its_batch(harness: Harness,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    harness.start()
    harness.flowing()
    original = harness.pipeline.process
    crashes: list[int] = []

    def crashing_once(envelopes: list[dict[str, Any]], claim: Any = ()) -> Any:
        if not crashes:
            crashes.append(len(envelopes))
            raise RuntimeError("a bug")
        return original(envelopes, claim)

    monkeypatch.setattr(harness.pipeline, "process", crashing_once)
    sent = [harness.publisher.good(f"crash {n}") for n in range(10)]
    wait_for(lambda: harness.errors, what="run() to raise")
    assert isinstance(harness.errors[0], RuntimeError)
    assert harness.ingest.stalled() is None  # down, not stalled: the supervisor knows that
    harness.errors.clear()
    harness.start()  # what the supervisor does
    wait_for(lambda: set(sent) <= harness.stored(), what="the kept batch recorded")
    assert harness.errors == [] and harness.rejected_count() == 0


def test_a_batch_that_crashes_twice_is_rejected_and_kept(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    harness.start()
    harness.flowing()

    def crashing(envelopes: list[dict[str, Any]], claim: Any = ()) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(harness.pipeline, "process", crashing)
    sent = harness.publisher.good("doomed")
    wait_for(lambda: harness.errors, what="run() to raise")
    harness.start()
    rejected = RejectedStore(harness.store)
    found = wait_for(lambda: [r for r in rejected.list() if r.msg_id == sent],
                     what="the batch kept as rejected")
    assert found[0].reason == "record" and "RuntimeError: a bug" in found[0].detail
    assert json.loads(found[0].payload)["msg_id"] == sent
    assert len(harness.errors) == 1


def test_stopping_while_the_database_is_unusable_returns(
        harness: Harness, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    harness.start()
    harness.flowing()

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailableError("database is locked")

    monkeypatch.setattr(harness.outbox, "record_and_claim", unavailable)
    harness.publisher.good("never")
    wait_for(harness.ingest.stalled, what="stalled")
    with caplog.at_level(logging.ERROR, logger="notifier.delivery.ingest"):
        harness.stopping.set()
        assert harness.thread is not None
        harness.thread.join(5)
    assert not harness.thread.is_alive()
    assert any("stopping with 1 messages not recorded" in r.getMessage()
               for r in caplog.records)


def test_a_flood_of_bad_messages_costs_a_transaction_a_batch_and_a_bounded_log(
        harness: Harness, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    harness.start()
    harness.flowing()
    writes: list[int] = []
    original = harness.ingest.rejected.add

    def counted(rows: Any) -> int:
        rows = list(rows)
        writes.append(len(rows))
        return original(rows)

    monkeypatch.setattr(harness.ingest.rejected, "add", counted)
    monkeypatch.setattr(ingest_module, "LOG_PER_SECOND", 5)
    flood = 1500
    with caplog.at_level(logging.WARNING, logger="notifier.delivery.ingest"):
        for n in range(flood):
            harness.publisher.send(TOPIC, b'{"msg": {}, "msg_id": "bad-%d", "i": "x"}' % n)
        last = harness.publisher.good("after the flood")
        wait_for(lambda: last in harness.stored(), what="the good message after the flood")
        wait_for(lambda: sum(writes) >= flood, what="every rejected message kept")
    assert sum(writes) == flood and len(writes) <= 20, writes  # not one a message
    assert harness.rejected_count() == flood
    lines = [r.getMessage() for r in caplog.records]
    one_by_one = [m for m in lines if m.startswith("rejected bad-")]
    assert 5 <= len(one_by_one) < 100
    assert "'i' must be an integer" in one_by_one[0]
    summed = sum(int(m.split()[0]) for m in lines if "not logged one by one" in m)
    assert len(one_by_one) + summed == flood
    assert RejectedStore(harness.store).count() == flood


def test_a_signature_sees_the_envelope_as_sent_then_it_is_normalised(
        config: Config, pki: Pki) -> None:
    from notifier.bus.signing import Signer, Validator

    store = Store(config.resolved_database_url())
    harness = Harness(config, store, validator=Validator(str(pki.ca_cert), str(pki.crl)))
    try:
        harness.start()
        signer = Signer(str(pki.signer_cert), str(pki.signer_key))
        # Signed as sent: a float timestamp and no 'i', which normalising changes.
        envelope = signer.sign({"topic": TOPIC.decode(), "msg": {"log": "signed"},
                                "msg_id": "2026-signed", "timestamp": 1_700_000_000.5,
                                "username": "tester"})
        tampered = dict(envelope, msg={"log": "changed"}, msg_id="2026-tampered")

        def recorded() -> bool:
            if "2026-signed" in harness.stored():
                return True
            for env in (envelope, tampered):  # again, until the relay passes them on
                harness.publisher.send(TOPIC, canonical_json(env).encode())
            return False

        wait_for(recorded, "the signed message recorded", interval=0.05)
        (stored,) = [m for m in store.message_rows() if m.msg_id == "2026-signed"]
        assert stored.envelope["i"] == 0 and stored.envelope["timestamp"] == 1_700_000_000
        assert stored.envelope["signature"] == envelope["signature"]
        rejected = wait_for(lambda: RejectedStore(store).list(reason="signature"),
                            what="the tampered one rejected")
        assert rejected[0].msg_id == "2026-tampered"
        assert "2026-tampered" not in harness.stored()
    finally:
        harness.close()
        store.close()
