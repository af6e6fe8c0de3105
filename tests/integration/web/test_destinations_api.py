"""Destinations over HTTP against the real server: links read from aiosmtpd, codes from ngircd."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import notifier.storage.destinations as destinations_module
from notifier.config import config_from_dict
from notifier.delivery.settings import address_for
from notifier.storage import Store
from notifier.storage.destinations import MAX_ATTEMPTS, Destinations
from notifier.storage.outbox import Outbox
from notifier.users.cache import UserCache
from notifier.web import WebServer
from tests.conftest import wait_for
from tests.integration.backends.peers_email import SmtpPeer
from tests.integration.backends.peers_irc import IrcListener, IrcServer

from .conftest import PUBLIC, Site, Statements

pytestmark = pytest.mark.integration

LINK = re.compile(re.escape(PUBLIC) + r"/destinations/verify/([A-Za-z0-9_-]+)")
CODE = re.compile(r"code for \w+: ([A-Z0-9-]+)")


@dataclass
class World:
    site: Site
    smtp: SmtpPeer
    irc: IrcServer
    tokens: dict[str, str]

    def client(self, user: str = "alice", scope: str = "write") -> httpx.Client:
        token = self.tokens[f"{user}:{scope}"]
        return self.site.client(headers={"Authorization": f"Bearer {token}"})

    def link_to(self, address: str, count: int = 1) -> str:
        """The secret of the ``count``-th confirmation mail sent to ``address``."""
        def mails() -> list[Any]:
            return [m for m in self.smtp.handler.messages if address in m.rcpt_tos]

        found = wait_for(lambda: len(mails()) >= count and mails(), f"mail to {address}")
        body = found[count - 1].message.get_body(("plain",)).get_content()
        match = LINK.search(body)
        assert match, body
        return match.group(1)

    def shaped(self, user: str = "alice") -> dict[str, Any]:
        record = self.site.store.get_user(user)
        assert record is not None
        return Destinations(self.site.store).deliverable(record)


@pytest.fixture
def world(tmp_path: Path, smtp: SmtpPeer) -> Iterator[World]:
    irc = IrcServer("ngircd", tmp_path / "ngircd").start()
    config = config_from_dict({
        "database_url": f"sqlite:///{tmp_path / 'n.db'}",
        "http": {"listen": "127.0.0.1:0", "base_url": PUBLIC},
        **smtp.config(),
        "irc": {"host": "127.0.0.1", "port": irc.port, "nick": "notifier"},
    }, str(tmp_path / "notifier.toml"))
    store = Store.from_config(config)
    store.import_users([{"name": name, "emails": [f"{name}@example.org"], "ircnicks": []}
                        for name in ("alice", "bob")])
    users = UserCache(config, store)
    web = WebServer(config, store=store, outbox=Outbox(store), users=users,
                    health=lambda kind: (True, {}), metrics=lambda: b"",
                    check_unsubscribe=lambda t: ("", ""), unsubscribe=lambda t: ("", ""))
    host, port = web.address
    site = Site(web, store, Outbox(store), users, f"http://{host}:{port}", Statements(),
                {"live": True, "ready": True})
    tokens = {f"{user}:{scope}": web.api.credentials.create_token(user, scope, scope)[0]
              for user in ("alice", "bob") for scope in ("read", "write")}
    site.run()
    try:
        yield World(site, smtp, irc, tokens)
    finally:
        site.halt()
        web.close()
        store.close()
        irc.stop()


def add(client: httpx.Client, kind: str, address: str) -> httpx.Response:
    return client.post("/api/v1/destinations", json={"kind": kind, "address": address})


def test_an_email_address_is_confirmed_by_its_link(world: World) -> None:
    with world.client() as client:
        listed = client.get("/api/v1/destinations").json()
        assert [(d["address"], d["state"], d["origin"]) for d in listed] == [
            ("alice@example.org", "verified", "record")]
        answer = add(client, "email", "work@example.org")
        assert answer.status_code == 201, answer.text
        added = answer.json()
        assert added["state"] == "pending" and added["origin"] == "person"
        assert answer.headers["location"] == f"/api/v1/destinations/{added['id']}"
        secret = world.link_to("work@example.org")
        assert len(secret) >= 43
        assert address_for(world.shaped(), "email") == "alice@example.org"
        assert "work@example.org" not in world.shaped()["emails"]

        # Opening the link (a mail scanner, a preview) changes nothing.
        page = httpx.get(f"{world.site.base}/destinations/verify/{secret}")
        assert page.status_code == 200 and "work@example.org" in page.text
        assert "<button" in page.text
        assert client.get("/api/v1/destinations").json()[-1]["state"] == "pending"

        before = world.site.store.last_change()
        done = httpx.post(f"{world.site.base}/destinations/verify/{secret}")
        assert done.status_code == 200 and "is confirmed" in done.text
        assert world.site.store.last_change() > before  # a running service reads alice again
        assert client.get("/api/v1/destinations").json()[-1]["state"] == "verified"
        assert world.shaped()["emails"] == ["alice@example.org", "work@example.org"]
        # Single use.
        again = httpx.post(f"{world.site.base}/destinations/verify/{secret}")
        assert again.status_code == 404 and "has been used" in again.text
        assert httpx.get(f"{world.site.base}/destinations/verify/x{secret}").status_code == 404


def test_an_irc_nick_is_verified_by_the_code_it_was_sent(world: World) -> None:
    listener = IrcListener(world.irc.port, "alice_irc")
    try:
        with world.client() as client:
            answer = add(client, "irc", "alice_irc")
            assert answer.status_code == 201, answer.text
            ident = answer.json()["id"]
            message = listener.wait_for(1, 10)[0]
            code = CODE.search(message.text)
            assert code, message.text
            assert len(code.group(1).replace("-", "")) == 26

            wrong = client.post(f"/api/v1/destinations/{ident}/verify", json={"code": "NOPE"})
            assert wrong.status_code == 422
            assert wrong.headers["content-type"] == "application/problem+json"
            assert wrong.json()["errors"][0]["field"] == "code"
            assert f"{MAX_ATTEMPTS - 1} tries left" in wrong.json()["detail"]
            assert "alice_irc" not in world.shaped()["ircnicks"]

            right = client.post(f"/api/v1/destinations/{ident}/verify",
                                json={"code": code.group(1).lower()})
            assert right.status_code == 200, right.text
            assert right.json()["state"] == "verified"
            assert world.shaped()["ircnicks"] == ["alice_irc"]
            used = client.post(f"/api/v1/destinations/{ident}/verify",
                               json={"code": code.group(1)})
            assert used.status_code == 409

            # A nick nobody uses gets no code, and is not added.
            second = add(client, "irc", "alice_irc2")
            assert second.status_code == 422  # nobody uses that nick: nothing was added
            assert second.json()["errors"][0]["field"] == "address"
            assert len(client.get("/api/v1/destinations").json()) == 2
    finally:
        listener.close()


def test_wrong_codes_are_limited_and_a_new_code_replaces_the_old(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = IrcListener(world.irc.port, "alice_irc")
    try:
        with world.client() as client:
            ident = add(client, "irc", "alice_irc").json()["id"]
            first = CODE.search(listener.wait_for(1, 10)[0].text)
            assert first
            too_soon = client.post(f"/api/v1/destinations/{ident}/resend")
            assert too_soon.status_code == 429 and int(too_soon.headers["retry-after"]) > 0
            for _ in range(MAX_ATTEMPTS):
                assert client.post(f"/api/v1/destinations/{ident}/verify",
                                   json={"code": "WRONG"}).status_code == 422
            spent = client.post(f"/api/v1/destinations/{ident}/verify",
                                json={"code": first.group(1)})
            assert spent.status_code == 409 and "new one" in spent.json()["detail"]
            monkeypatch.setattr(destinations_module, "RESEND_AFTER", 0.0)
            assert client.post(f"/api/v1/destinations/{ident}/resend").status_code == 202
            second = CODE.search(listener.wait_for(2, 10)[1].text)
            assert second and second.group(1) != first.group(1)
            done = client.post(f"/api/v1/destinations/{ident}/verify",
                               json={"code": second.group(1)})
            assert done.status_code == 200 and done.json()["state"] == "verified"
    finally:
        listener.close()


def test_addresses_are_checked_and_errors_name_the_field(world: World) -> None:
    with world.client() as client:
        for body, field in (({"kind": "email", "address": "no-at-sign"}, "address"),
                            ({"kind": "irc", "address": "9starts-with-digit"}, "address"),
                            ({"kind": "fax", "address": "123"}, "kind"),
                            ({"kind": "email"}, "address")):
            answer = client.post("/api/v1/destinations", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["field"] == field
        assert add(client, "email", "no-at-sign").json()["detail"].startswith(
            "address: 'no-at-sign' is not an email address: it has no '@'")
        assert add(client, "email", "alice@example.org").status_code == 409
        assert world.smtp.handler.messages == []


def test_nobody_reaches_another_persons_destination(world: World) -> None:
    with world.client() as alice:
        ident = add(alice, "email", "work@example.org").json()["id"]
    with world.client("bob") as bob:
        assert bob.get("/api/v1/destinations").json()[0]["address"] == "bob@example.org"
        for method, path, body in (
                ("POST", f"/api/v1/destinations/{ident}/verify", {"code": "X"}),
                ("POST", f"/api/v1/destinations/{ident}/resend", None),
                ("DELETE", f"/api/v1/destinations/{ident}", None)):
            answer = bob.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
    with world.client("alice", "read") as reader:
        assert reader.get("/api/v1/destinations").status_code == 200
        assert add(reader, "email", "x@example.org").status_code == 403
        assert reader.delete(f"/api/v1/destinations/{ident}").status_code == 403
    assert httpx.get(f"{world.site.base}/api/v1/destinations").status_code == 401
    with world.client() as alice:
        assert len(alice.get("/api/v1/destinations").json()) == 2


def test_delivery_settings_name_verified_addresses_only(world: World) -> None:
    with world.client() as client:
        assert client.get("/api/v1/delivery").json() == {
            "email": None, "irc": None, "rss": None, "desktop": None, "webpush": None,
            "matrix": None, "quiet_hours": None}
        bad = client.put("/api/v1/delivery",
                         json={"email": {"digest": {"every": "1 hour", "max_items": 0}}})
        assert bad.status_code == 422
        fields = {e["field"]: e["detail"] for e in bad.json()["errors"]}
        assert set(fields) == {"email.digest.every", "email.digest.max_items"}
        assert "did you mean '1h'" in fields["email.digest.every"]
        unknown = client.put("/api/v1/delivery", json={"emial": None})
        assert "did you mean 'email'" in unknown.json()["detail"]

        ident = add(client, "email", "work@example.org").json()["id"]
        wanted = {"email": {"address": "work@example.org",
                            "digest": {"every": "daily@08:00", "max_items": 50}}}
        pending = client.put("/api/v1/delivery", json=wanted)
        assert pending.status_code == 422
        assert pending.json()["errors"][0]["field"] == "email.address"

        assert httpx.post(f"{world.site.base}/destinations/verify/"
                          f"{world.link_to('work@example.org')}").status_code == 200
        saved = client.put("/api/v1/delivery", json=wanted)
        assert saved.status_code == 200, saved.text
        assert saved.json()["email"] == wanted["email"]
        assert client.get("/api/v1/delivery").json()["email"] == wanted["email"]
        assert address_for(world.shaped(), "email") == "work@example.org"

        # Removing the address drops the setting that names it; the digest stays.
        record_id = client.get("/api/v1/destinations").json()[0]["id"]
        assert client.delete(f"/api/v1/destinations/{record_id}").status_code == 409
        assert client.delete(f"/api/v1/destinations/{ident}").status_code == 204
        assert client.get("/api/v1/delivery").json()["email"] == {
            "digest": {"every": "daily@08:00", "max_items": 50}}
        assert address_for(world.shaped(), "email") == "alice@example.org"
        assert client.delete(f"/api/v1/destinations/{ident}").status_code == 404
