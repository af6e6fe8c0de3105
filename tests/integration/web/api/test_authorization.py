"""Nobody sees or changes what is not theirs: a walk over every route of the API.

The routes come from the running server's ``/api/v1/openapi.json``, so a new
route is walked without anyone adding it here. Each operation is called:

* without credentials, with a valid body and with a broken one (so the
  credentials are checked before the body): 401, except the public sign-in
  routes in :data:`PUBLIC`;
* as another user (bob, by session and by write token) on alice's resource,
  made fresh by the factory for each path parameter (or each id its body
  names, :data:`BODY_PARAMS`): 403 or 404; a route
  without parameters may answer bob, but never with alice's private data;
* with alice's read token on a write method: 403;
* with alice's session cookie and no (or a wrong) X-CSRF-Token on an unsafe
  method: 403;
* on ``/admin/...`` as a non-admin: 403;
* and, as the positive control, by its owner (alice, or the admin carol on
  admin routes) with everything right: neither refused nor "not found" -- so
  the refusals above are about who calls, not about a missing resource or a
  bad body.

A path parameter with no factory in :data:`FACTORIES` fails the walk: add
one that makes alice's resource of that kind. A body that cannot be made
from the schema gets an example in :data:`EXAMPLES`.
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from notifier.storage.destinations import Destinations
from notifier.storage.inbox import Inbox, inbox_row
from notifier.storage.mutes import Mutes
from notifier.storage.push import PushSubscriptions
from notifier.web.api.auth import CSRF_HEADER
from tests.integration.outbox_rows import envelope
from tests.integration.pushservice import Browser as PushBrowser
from tests.integration.web.conftest import Site

from .conftest import API, Browser, bearer, credentials, make_token, sign_in

pytestmark = pytest.mark.integration

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: routes anyone may call: asking for a sign-in link (they answer the same for everyone)
PUBLIC = frozenset({("POST", f"{API}/signin/email")})
#: unsafe methods that only read: a read token may call them (a cookie still needs CSRF)
READS_BY_POST = frozenset({("POST", f"{API}/rule-preview")})
#: safe routes that take a session only, not a token
SESSION_ONLY_READS: frozenset[tuple[str, str]] = frozenset()
OWNER, OTHER, ADMIN = "alice", "bob", "carol"
_n = itertools.count(1)


@dataclass
class Walk:
    site: Site
    clients: list[httpx.Client] = field(default_factory=list)
    #: strings only alice's own answers may contain
    private: list[str] = field(default_factory=list)

    def browser(self, name: str) -> Browser:
        return sign_in(self.site, name, self.clients)


# -- what alice owns, made fresh for each operation --------------------------------

def rule_name(walk: Walk, owner: str) -> str:
    name = f"walk rule {next(_n)}"
    walk.site.store.upsert_rules([{"user": owner, "name": name, "track": {
        "kind": "topics", "patterns": ["org.example.walk.*"]}, "destinations": ["rss"]}])
    return name


def token_id(walk: Walk, owner: str) -> str:
    _, token = credentials(walk.site).create_token(owner, f"walk token {next(_n)}", "read")
    return str(token.id)


def user_name(walk: Walk, owner: str) -> str:
    return owner


def rule_id(walk: Walk, owner: str) -> str:
    name = rule_name(walk, owner)
    (state,) = [r for r in Mutes(walk.site.store).list(owner) if r.name == name]
    return str(state.id)


def notification_id(walk: Walk, owner: str) -> str:
    """A notification in the owner's inbox, its title private to them."""
    msg_id = f"walk-{uuid.uuid4().hex}"
    walk.site.outbox.record_and_claim([envelope(msg_id)], [], inbox=[inbox_row(
        owner, msg_id, title=f"{walk.private[0]} notification", link=None, app="walk",
        topic="org.example.walk.thing", severity="info", timestamp=time.time(),
        rules=["walk"], why={"walk": f"{walk.private[0]} why"})])
    return str(Inbox(walk.site.store).last_id(owner))


def destination_id(walk: Walk, owner: str) -> str:
    """A pending email address of the owner's (confirmed by a link, resent by mail)."""
    destination, _ = Destinations(walk.site.store).add(
        owner, "email", f"walk{next(_n)}@example.org")
    return str(destination.id)


def push_subscription(path: str) -> dict[str, Any]:
    """A browser's PushSubscription JSON, at a push service on loopback (allowed here)."""
    return {"endpoint": f"http://127.0.0.1:9/walk/{path}",
            "keys": PushBrowser("walk", path).keys()}


def subscription_id(walk: Walk, owner: str) -> str:
    """One of the owner's browsers subscribed to Web Push."""
    sub = push_subscription(str(next(_n)))
    return str(PushSubscriptions(walk.site.store).add(
        owner, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"],
        allow_private=True).id)


#: path parameter -> a function making alice's resource, returning its key
FACTORIES: dict[str, Callable[[Walk, str], str]] = {
    "name": rule_name,
    "token_id": token_id,
    "user": user_name,
    "rule_id": rule_id,
    "notification_id": notification_id,
    "destination_id": destination_id,
    "subscription_id": subscription_id,
}

#: required query parameter -> a value
QUERY_VALUES: dict[str, str] = {"prefix": "a", "q": "a", "since": "7d"}

RULE = {"name": "walk", "track": {"kind": "topics", "patterns": ["org.example.walk.*"]},
        "destinations": ["rss"]}

#: (method, path) -> what its body names of alice's, made by FACTORIES like a path parameter
BODY_PARAMS: dict[tuple[str, str], list[str]] = {
    ("POST", f"{API}/notifications/read"): ["notification_id"],
    ("POST", f"{API}/notifications/unread"): ["notification_id"],
}

#: (method, path) -> the body of a good request, from the path (and body) parameters
EXAMPLES: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
    ("POST", f"{API}/notifications/read"): lambda p: {"ids": [int(p["notification_id"])]},
    ("POST", f"{API}/notifications/unread"): lambda p: {"ids": [int(p["notification_id"])]},
    ("POST", f"{API}/rules"): lambda p: {**RULE, "name": f"walk new {next(_n)}"},
    ("POST", f"{API}/destinations"): lambda p: {"kind": "email",
                                                "address": f"walk{next(_n)}@example.org"},
    ("PUT", f"{API}/delivery"): lambda p: {"email": {"digest": {"every": "1h"}}},
    ("PUT", f"{API}/rules/{{name}}"): lambda p: {**RULE, "name": p["name"]},
    ("POST", f"{API}/signin/email"): lambda p: {"address": "nobody@example.org"},
    ("POST", f"{API}/tokens"): lambda p: {"name": f"walk new {next(_n)}", "scope": "read"},
    ("POST", f"{API}/push/subscriptions"): lambda p: push_subscription(f"new{next(_n)}"),
}


# -- bodies from the schema ------------------------------------------------------------

def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, kind, name = schema["$ref"].split("/")
        schema = spec["components"][kind][name]
    return schema


def sample(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A value the schema accepts: its example or default, else the least it requires."""
    schema = resolve(schema, spec)
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    for key in ("example", "default", "const"):
        if key in schema:
            return copy.deepcopy(schema[key])
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [resolve(o, spec) for o in schema[key]]
            return sample(next((o for o in options if o.get("type") != "null"), options[0]),
                          spec)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = sample(part, spec)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: sample(props[name], spec) for name in schema.get("required", [])
                if name in props}
    if kind == "array":
        return [sample(schema.get("items", {}), spec)
                for _ in range(max(1, schema.get("minItems", 0)))]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "email":
            return "walk@example.org"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        return "w" * max(4, schema.get("minLength", 0))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return float(max(1, schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    return {}


@dataclass
class Operation:
    method: str
    path: str
    spec: dict[str, Any]
    op: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def unsafe(self) -> bool:
        return self.method not in SAFE

    @property
    def writes(self) -> bool:
        return self.unsafe and self.key not in READS_BY_POST

    @property
    def admin(self) -> bool:
        return self.path.startswith(f"{API}/admin/") or self.path == f"{API}/admin"

    @property
    def streams(self) -> bool:
        """Whether it answers with a live event stream (the walk reads its first event)."""
        ok = self.op.get("responses", {}).get("200", {})
        return "text/event-stream" in ok.get("content", {})

    @property
    def public(self) -> bool:
        return self.key in PUBLIC

    def params(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.op.get("parameters", []) if p.get("in") == where]

    def has_body(self) -> bool:
        return "requestBody" in self.op

    def body(self, params: dict[str, str]) -> Any:
        if self.key in EXAMPLES:
            return EXAMPLES[self.key](params)
        content = self.op["requestBody"].get("content", {})
        media = content.get("application/json") or next(iter(content.values()), {})
        return sample(media.get("schema", {}), self.spec)


def operations(spec: dict[str, Any]) -> list[Operation]:
    return [Operation(method.upper(), path, spec, op)
            for path, ops in spec["paths"].items() for method, op in ops.items()
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")]


class Failures(list[str]):
    def check(self, ok: bool, what: str, answer: httpx.Response | None = None) -> None:
        if not ok:
            got = "" if answer is None else f": got {answer.status_code} {answer.text[:300]}"
            self.append(what + got)


# -- the walk -------------------------------------------------------------------------------

@pytest.fixture
def walk(api_site: Site) -> Walk:
    w = Walk(api_site)
    secret = f"alice-private-{uuid.uuid4().hex}"
    api_site.store.upsert_rules([{"user": OWNER, "name": secret + "-rule", "track": {
        "kind": "topics", "patterns": [f"org.{secret}.*"]}, "destinations": ["rss"]}])
    credentials(api_site).create_token(OWNER, secret + "-token", "write")
    w.private += [secret, "alice@example.org"]
    return w


def streamed(client: httpx.Client, op: Operation, path: str, query: dict[str, str],
             headers: dict[str, str]) -> httpx.Response:
    """An event stream's answer: its status, headers and first event (it never ends)."""
    with client.stream(op.method, path, params=query, headers=headers) as answer:
        first = b""
        for chunk in answer.iter_bytes():
            first += chunk
            if answer.status_code != 200 or b"\n\n" in first:
                break
        return httpx.Response(answer.status_code, headers=answer.headers, content=first)


def request(client: httpx.Client, op: Operation, path: str, query: dict[str, str],
            body: Any = None, *, raw: bytes | None = None,
            headers: dict[str, str] | None = None) -> httpx.Response:
    headers = dict(headers or {})
    if op.streams:
        return streamed(client, op, path, query, headers)
    if raw is not None:
        headers["content-type"] = "application/json"
        return client.request(op.method, path, params=query, content=raw, headers=headers)
    if op.has_body():
        return client.request(op.method, path, params=query, json=body, headers=headers)
    return client.request(op.method, path, params=query, headers=headers)


def walk_one(walk: Walk, op: Operation, failures: Failures) -> None:
    site = walk.site
    params: dict[str, str] = {}
    for param in op.params("path"):
        factory = FACTORIES.get(param["name"])
        if factory is None:
            failures.append(
                f"{op}: no factory for the path parameter {param['name']!r}; add one to "
                "FACTORIES in tests/integration/web/api/test_authorization.py that makes "
                f"{OWNER}'s resource of that kind")
            return
        params[param["name"]] = factory(walk, OWNER)
    query: dict[str, str] = {}
    for param in op.params("query"):
        if param.get("required"):
            value = QUERY_VALUES.get(param["name"])
            schema = param.get("schema", {})
            if value is None and ("default" in schema or "example" in schema):
                value = str(schema.get("example", schema.get("default")))
            if value is None:
                failures.append(f"{op}: no value for the required query parameter "
                                f"{param['name']!r}; add one to QUERY_VALUES")
                return
            query[param["name"]] = value
    path = op.path.format(**{k: quote(v, safe="") for k, v in params.items()})
    for name in BODY_PARAMS.get(op.key, ()):
        params[name] = FACTORIES[name](walk, OWNER)
    body = op.body(params) if op.has_body() else None

    with site.client() as anonymous:
        answer = request(anonymous, op, path, query, body)
        if op.public:
            failures.check(answer.status_code not in (401, 403) and answer.status_code < 500,
                           f"{op}: public, yet refused without credentials", answer)
            return
        failures.check(answer.status_code == 401, f"{op}: without credentials, not 401",
                       answer)
        failures.check(answer.headers.get("content-type") == "application/problem+json",
                       f"{op}: the 401 is not problem+json", answer)
        if op.has_body():
            broken = request(anonymous, op, path, query, raw=b'{"broken')
            failures.check(broken.status_code == 401, f"{op}: without credentials and with "
                           "a broken body, not 401 (the body is read before who calls?)",
                           broken)
            empty = request(anonymous, op, path, query, raw=b"")
            failures.check(empty.status_code == 401, f"{op}: without credentials and with no "
                           "body, not 401", empty)
        forged = request(anonymous, op, path, query, body,
                         headers=bearer("ntfy_pat_" + "A" * 43))
        failures.check(forged.status_code == 401, f"{op}: an unknown token, not 401", forged)

    alice, bob = walk.browser(OWNER), walk.browser(OTHER)
    bobs_token = make_token(site, OTHER, "write")
    as_bob = [("bob's session", lambda: request(bob.client, op, path, query, body,
                                                 headers={CSRF_HEADER: bob.csrf})),
              ("bob's write token", lambda: request(bob.client, op, path, query, body,
                                                    headers=bearer(bobs_token)))]
    for who, call in as_bob:
        answer = call()
        if op.admin:
            failures.check(answer.status_code == 403, f"{op}: as {who} (not an admin), "
                           "not 403", answer)
        elif params:
            failures.check(answer.status_code in (403, 404),
                           f"{op}: as {who}, on {OWNER}'s resource {params}, not 403/404",
                           answer)
        leaked = [s for s in walk.private if s in answer.text]
        failures.check(not leaked, f"{op}: as {who}, the answer shows {OWNER}'s {leaked}",
                       answer)

    read = make_token(site, OWNER, "read")
    answer = request(alice.client, op, path, query, body, headers=bearer(read))
    if op.admin:
        failures.check(answer.status_code == 403, f"{op}: a non-admin's read token, not 403",
                       answer)
    elif op.writes:
        failures.check(answer.status_code == 403, f"{op}: a read token on a write route, "
                       "not 403", answer)
    elif op.key not in SESSION_ONLY_READS:
        failures.check(answer.status_code not in (401, 403), f"{op}: a read token may read",
                       answer)

    if op.unsafe:
        for label, headers in (("no X-CSRF-Token", {}), ("a wrong X-CSRF-Token",
                                                          {CSRF_HEADER: bob.csrf})):
            answer = request(alice.client, op, path, query, body, headers=headers)
            failures.check(answer.status_code == 403,
                           f"{op}: a session cookie with {label}, not 403", answer)

    if op.admin:
        for who, headers in (("alice's session", {CSRF_HEADER: alice.csrf}),
                             ("alice's write token", bearer(make_token(site, OWNER, "write")))):
            answer = request(alice.client, op, path, query, body, headers=headers)
            failures.check(answer.status_code == 403, f"{op}: as {who} (not an admin), "
                           "not 403", answer)

    # the positive control: the owner, or an admin, with everything right
    owner = walk.browser(ADMIN) if op.admin else alice
    answer = request(owner.client, op, path, query, body, headers={CSRF_HEADER: owner.csrf})
    refused = (401, 403, 405, 422) + ((404,) if params else ())
    failures.check(answer.status_code not in refused and answer.status_code < 500,
                   f"{op}: the positive control ({owner.name}, signed in, with a good body) "
                   "failed; fix the route, or its factory or example in this test", answer)


@pytest.mark.api(web={"user_rate": 0, "address_rate": 0, "admins": [ADMIN]},
                 webpush={"allow_private_endpoints": True})
def test_every_route_refuses_whoever_may_not_call_it(api_site: Site, walk: Walk) -> None:
    with api_site.client() as client:
        schema = client.get(f"{API}/openapi.json")
    assert schema.status_code == 200
    ops = operations(schema.json())
    walked = {op.key for op in ops}
    # the walk's own positive control: it sees the routes it must
    assert {("GET", f"{API}/users/me"), ("POST", f"{API}/rules"),
            ("DELETE", f"{API}/rules/{{name}}"), ("DELETE", f"{API}/tokens/{{token_id}}"),
            ("POST", f"{API}/signout")} <= walked
    assert PUBLIC <= walked, "a public route is gone: update PUBLIC"
    failures = Failures()
    try:
        for op in ops:
            walk_one(walk, op, failures)
    finally:
        for c in walk.clients:
            c.close()
    assert not failures, f"{len(failures)} refusal(s) wrong over {len(ops)} operations:\n" + \
        "\n".join(failures)


def test_the_schema_and_the_docs_page_are_public(api_site: Site) -> None:
    with api_site.client() as anonymous:
        schema = anonymous.get(f"{API}/openapi.json")
        assert schema.status_code == 200 and schema.json()["info"]["title"] == "notifier"
        docs = anonymous.get(f"{API}/docs")
        assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
        assert f"{API}/openapi.json" in docs.text
