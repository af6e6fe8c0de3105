"""The matrix destination against a real Synapse, read by the person's own client.

One homeserver serves the module (rate limits off); the rate-limit test runs
its own, with tight message limits. The restart test stops and starts the
shared one, so it runs last.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.backends import matrix as matrix_backend
from notifier.backends.matrix import MatrixBackend
from notifier.config import Config, config_from_dict
from notifier.delivery.digests import DigestScheduler
from notifier.delivery.pipeline import Pipeline
from notifier.delivery.settings import address_for, digest_settings
from notifier.delivery.workers import BackendWorker
from notifier.errors import TemporaryDeliveryError
from notifier.notification import Notification
from notifier.render.renderer import Renderer
from notifier.storage import Store
from notifier.storage.destinations import Destinations
from notifier.storage.outbox import Outbox
from notifier.users.cache import UserCache
from notifier.web import WebServer
from tests.integration.outbox_rows import Clock, envelope
from tests.integration.synapse import Account, MatrixPerson, Message, Synapse
from tests.integration.web.conftest import Site, Statements

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    server = Synapse(tmp_path_factory.mktemp("synapse")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot(synapse: Synapse) -> Account:
    return synapse.register("notifier")


def config(server: Synapse, bot: Account, tmp_path: Path, **extra: dict[str, object]
           ) -> Config:
    return config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'notifier.db'}",
        "matrix": {"homeserver": server.url, "user_id": bot.user_id,
                   "access_token": bot.token, "rooms_file": str(tmp_path / "rooms.json"),
                   "timeout": 5.0},
        "delivery": {"max_attempts": 50, "retry_base": 0.2, "retry_max": 5.0}, **extra})


def note(person: Account, msg_id: str, body: str, html: str | None = None) -> Notification:
    content = {"body": body, **({"html": html} if html is not None else {})}
    return Notification(user=person.user_id[1:].split(":")[0], destination="matrix",
                        address=person.user_id, msg_id=msg_id, app="koji",
                        topic="org.fedoraproject.dev.buildsys.build.state.change",
                        content=content)


def read(person: MatrixPerson, count: int, timeout: float = 20.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += person.poll(min(2.0, max(0.0, deadline - time.monotonic())))
    return got + person.poll(0.3)


def test_a_rendered_notification_arrives_as_a_direct_notice(
        synapse: Synapse, bot: Account, tmp_path: Path) -> None:
    person = MatrixPerson(synapse.register("carol"))
    cfg = config(synapse, bot, tmp_path)
    described = {"msg_id": "2026-1", "topic": "org.fedoraproject.dev.buildsys.build.state.change",
                 "app": "koji", "summary": "python-requests <2.32> built",
                 "link": "https://koji.example.org/taskinfo?id=1", "severity": "error",
                 "usernames": [], "agent": None, "packages": ["python-requests"],
                 "groups": [], "icon": None}
    renderer = Renderer(cfg, secret=b"test-secret")
    rendered = renderer.render("matrix", described, {"msg_id": "2026-1"}, {"name": "carol"},
                               ["my builds"], person.account.user_id)
    with MatrixBackend(cfg) as backend:
        backend.send(rendered)
    (got,) = read(person, 1)
    assert got.sender == bot.user_id
    assert got.content["msgtype"] == "m.notice"
    assert got.content["body"].startswith("[error] koji: python-requests <2.32> built")
    assert "https://koji.example.org/taskinfo?id=1" in got.content["body"]
    assert got.content["format"] == "org.matrix.custom.html"
    html = got.content["formatted_body"]
    assert "python-requests &lt;2.32&gt; built" in html
    assert '<a href="https://koji.example.org/taskinfo?id=1">' in html
    # a direct room of two, marked as such on both sides
    members = bot.call("GET", f"/rooms/{got.room_id}/joined_members").json()["joined"]
    assert sorted(members) == sorted([bot.user_id, person.account.user_id])
    assert bot.account_data("m.direct")[person.account.user_id] == [got.room_id]
    create = person.account.call(
        "GET", f"/rooms/{got.room_id}/state/m.room.member/{person.account.user_id}").json()
    assert create["membership"] == "join"


def test_the_room_is_reused_after_a_restart_of_the_backend(
        synapse: Synapse, bot: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    person = MatrixPerson(synapse.register("dave"))
    cfg = config(synapse, bot, tmp_path)
    with MatrixBackend(cfg) as first:
        first.send(note(person.account, "m1", "first"))
    (one,) = read(person, 1)
    cached = (tmp_path / "rooms.json").read_text()
    assert one.room_id in cached
    with MatrixBackend(cfg) as second:  # a new process: the cache file is all it has
        second.send(note(person.account, "m2", "second"))
    (two,) = read(person, 1)
    assert two.room_id == one.room_id
    # Without the cache file, m.direct leads back to the same room.
    (tmp_path / "rooms.json").unlink()
    with MatrixBackend(cfg) as third:
        third.send(note(person.account, "m3", "third"))
    (three,) = read(person, 1)
    assert three.room_id == one.room_id
    assert bot.account_data("m.direct")[person.account.user_id] == [one.room_id]
    # The person left: a new direct room is made, and marked.
    person.account.call("POST", f"/rooms/{one.room_id}/leave", json={})
    with MatrixBackend(cfg) as fourth:
        fourth.send(note(person.account, "m4", "fourth"))
    (four,) = read(person, 1)
    assert four.room_id != one.room_id
    assert bot.account_data("m.direct")[person.account.user_id] == [one.room_id, four.room_id]
    # A running backend checks again, now and then, that the person is still there.
    monkeypatch.setattr(matrix_backend, "RECHECK", 0.0)
    with MatrixBackend(cfg) as running:
        running.send(note(person.account, "m5", "fifth"))
        (five,) = read(person, 1)
        assert five.room_id == four.room_id
        person.account.call("POST", f"/rooms/{four.room_id}/leave", json={})
        running.send(note(person.account, "m6", "sixth"))
    (six,) = read(person, 1)
    assert six.room_id not in (one.room_id, four.room_id)


def test_rate_limited_sends_wait_as_told_and_none_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    limited = Synapse(tmp_path / "limited",
                      limits={"rc_message": {"per_second": 0.5, "burst_count": 3}}).start()
    try:
        bot = limited.register("notifier")
        person = MatrixPerson(limited.register("erin"))
        cfg = config(limited, bot, tmp_path)
        # The backend alone: the refusal says how long to wait.
        with MatrixBackend(cfg) as backend:
            errors = []
            for i in range(6):
                try:
                    backend.send(note(person.account, f"direct-{i}", f"direct {i}"))
                except TemporaryDeliveryError as exc:
                    errors.append(exc)
        assert errors, "the homeserver never limited the bot"
        assert all("M_LIMIT_EXCEEDED" in str(e) for e in errors)
        assert all(e.retry_after is not None and 0 < e.retry_after <= 10 for e in errors)
        read(person, 6 - len(errors), timeout=10)
        # Through the outbox: every one arrives, once, after waiting.
        store = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
        try:
            outbox = Outbox(store)
            count = 8
            outbox.record([envelope(f"o{i}") for i in range(count)],
                          [(note(person.account, f"o{i}", f"queued {i}"), "pending")
                           for i in range(count)])
            worker = BackendWorker(cfg, outbox, MatrixBackend(cfg), batch=20, chunk=5)
            worker.setup()
            try:
                deadline = time.monotonic() + 60
                while outbox.rows(states=("pending", "failed")) and \
                        time.monotonic() < deadline:
                    worker._look.set()
                    worker.run_once()
                    time.sleep(0.1)
            finally:
                worker.close()
            rows = outbox.rows()
            assert {r.state for r in rows} == {"sent"}
            assert any(r.attempts > 0 for r in rows)  # some waited, as told
            assert "M_LIMIT_EXCEEDED" in caplog.text
        finally:
            store.close()
        got = read(person, count, timeout=30)
        assert sorted(m.content["body"] for m in got) == sorted(f"queued {i}"
                                                              for i in range(count))
    finally:
        limited.stop()


def test_a_digest_arrives_as_one_notice(synapse: Synapse, bot: Account,
                                        tmp_path: Path) -> None:
    person = MatrixPerson(synapse.register("heidi"))
    user = {"name": "heidi", "emails": [], "ircnicks": [], "groups": [], "feed_token": "t",
            "delivery": {"matrix": {"user_id": person.account.user_id,
                                    "digest": {"every": "1h"}}}}
    cfg = config(synapse, bot, tmp_path)
    clock = Clock(time.time())
    store = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
    try:
        outbox = Outbox(store, clock)
        renderer = Renderer(cfg, secret=b"s" * 32)
        pipeline = Pipeline(cfg, outbox, None, None, renderer,  # type: ignore[arg-type]
                            {"heidi": user}.get, clock=clock)
        assert pipeline.first_state(user, "matrix", "info") == "held"
        described = {"topic": "org.fedoraproject.dev.bodhi.update.comment", "app": "bodhi",
                     "link": None, "severity": "info", "usernames": [], "agent": None,
                     "packages": ["python-requests"], "groups": [], "icon": None}
        notes = [renderer.render("matrix", {**described, "msg_id": f"d{i}",
                                            "summary": f"comment <{i}>"},
                                 {"msg_id": f"d{i}", "timestamp": clock.now},
                                 user, ["my packages"], person.account.user_id)
                 for i in range(3)]
        outbox.record([envelope(f"d{i}") for i in range(3)], [(n, "held") for n in notes])
        digests = DigestScheduler(outbox, renderer, {"heidi": user}.get, clock=clock)
        clock.now += 2 * 3600
        assert digests.run_once() == 1
        worker = BackendWorker(cfg, outbox, MatrixBackend(cfg), batch=20, chunk=5)
        worker.setup()
        try:
            worker._look.set()
            assert worker.run_once() is True
        finally:
            worker.close()
        (got,) = read(person, 1)
        assert got.content["msgtype"] == "m.notice"
        assert got.content["body"].startswith("[notifier] 3 notifications")
        assert "comment <2>" in got.content["body"]
        assert "comment &lt;2&gt;" in got.content["formatted_body"]
    finally:
        store.close()


def test_a_matrix_id_is_verified_by_the_code_sent_to_it(
        synapse: Synapse, bot: Account, tmp_path: Path) -> None:
    person = MatrixPerson(synapse.register("grace"))
    cfg = config(synapse, bot, tmp_path, http={"listen": "127.0.0.1:0",
                                               "base_url": "http://notify.example.org"},
                 email={"maildir": str(tmp_path / "Maildir")})
    store = Store.from_config(cfg)
    store.import_users([{"name": "grace", "emails": ["grace@example.org"], "ircnicks": []}])
    users = UserCache(cfg, store)
    web = WebServer(cfg, store=store, outbox=Outbox(store), users=users,
                    health=lambda kind: (True, {}), metrics=lambda: b"",
                    check_unsubscribe=lambda t: ("", ""), unsubscribe=lambda t: ("", ""))
    host, port = web.address
    site = Site(web, store, Outbox(store), users, f"http://{host}:{port}", Statements(),
                {"live": True, "ready": True})
    token = web.api.credentials.create_token("grace", "write", "write")[0]
    site.run()
    try:
        with site.client(headers={"Authorization": f"Bearer {token}"}) as client:
            def shaped() -> dict[str, object]:
                record = store.get_user("grace")
                assert record is not None
                return Destinations(store).deliverable(record)

            bad = client.post("/api/v1/destinations",
                              json={"kind": "matrix", "address": "grace:localhost"})
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == "address"
            nobody = client.post("/api/v1/destinations",
                                 json={"kind": "matrix", "address": "@nobody:localhost"})
            assert nobody.status_code == 422, nobody.text  # the homeserver knows no such user
            added = client.post("/api/v1/destinations",
                                json={"kind": "matrix", "address": person.account.user_id})
            assert added.status_code == 201, added.text
            ident = added.json()["id"]
            assert address_for(shaped(), "matrix") is None  # pending: never sent to
            pending = client.put("/api/v1/delivery", json={
                "matrix": {"user_id": person.account.user_id}})
            assert pending.status_code == 422
            assert pending.json()["errors"][0]["field"] == "matrix.user_id"
            (message,) = read(person, 1)
            code = re.search(r"code for grace: ([A-Z0-9-]+)", message.content["body"])
            assert code, message.content
            right = client.post(f"/api/v1/destinations/{ident}/verify",
                                json={"code": code.group(1)})
            assert right.status_code == 200, right.text
            assert right.json()["state"] == "verified"
            assert address_for(shaped(), "matrix") == person.account.user_id
            chosen = client.put("/api/v1/delivery", json={
                "matrix": {"user_id": person.account.user_id, "digest": {"every": "1h"}}})
            assert chosen.status_code == 200, chosen.text
            assert digest_settings(shaped(), "matrix") == {"every": "1h", "max_items": 100}
    finally:
        site.halt()
        web.close()
        store.close()


def test_a_homeserver_restart_loses_nothing(synapse: Synapse, bot: Account,
                                            tmp_path: Path) -> None:
    person = MatrixPerson(synapse.register("frank"))
    cfg = config(synapse, bot, tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'notifier.db'}")
    outbox = Outbox(store)

    def queue(first: int, count: int) -> None:
        outbox.record([envelope(f"r{i}") for i in range(first, first + count)],
                      [(note(person.account, f"r{i}", f"restart {i}"), "pending")
                       for i in range(first, first + count)])

    def drain(worker: BackendWorker, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while outbox.rows(states=("pending", "failed")) and time.monotonic() < deadline:
            worker._look.set()
            worker.run_once()
            time.sleep(0.1)

    try:
        worker = BackendWorker(cfg, outbox, MatrixBackend(cfg), batch=20, chunk=5)
        worker.setup()
        queue(0, 3)
        drain(worker, 20)
        assert len(read(person, 3)) == 3
        synapse.stop()
        queue(3, 4)
        worker._look.set()
        worker.run_once()
        failed = outbox.rows(states=("failed",))
        assert failed and all("cannot reach" in (r.last_error or "") for r in failed)
        worker.close()  # notifier restarts too, while the homeserver is down
        synapse.start()
        worker = BackendWorker(cfg, outbox, MatrixBackend(cfg), batch=20, chunk=5)
        worker.setup()
        try:
            drain(worker, 30)
        finally:
            worker.close()
        assert {r.state for r in outbox.rows()} == {"sent"}
        got = read(person, 4)
        assert sorted(m.content["body"] for m in got) == [f"restart {i}" for i in range(3, 7)]
    finally:
        store.close()
