"""A property of a running ``notifier serve``: whatever else arrives, good messages are delivered.

Hypothesis mixes good messages with hostile frames sent raw to the relay's
inbound socket (wrong frame counts, bytes that are not JSON, deep nesting,
NaN, huge integers, wrong field types, huge or NUL-bearing topics, lone
surrogates) and with hostile user records written straight into the
database, bypassing validation, for users whose rules match every message.
Every good message must reach alice's feed. One service runs for the whole
module; the examples are derandomized, so a run is the same every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.rawbus import HostileWorld

pytestmark = pytest.mark.integration

TOPIC = "org.fedoraproject.dev.hostile.thing.happened"
HOSTILE_USERS = [f"h{n}" for n in range(4)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileWorld]:
    w = HostileWorld(tmp_path_factory.mktemp("property"))
    for name in HOSTILE_USERS:
        w.write_user(name, emails=[f"{name}@example.org"], ircnicks=[name])
    w.rules(["alice"], ["rss"])
    w.rules(HOSTILE_USERS, ["email", "irc", "rss", "desktop"])
    try:
        w.start()
        yield w
    finally:
        w.close()


# -- JSON, any of it -------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def envelope(**fields: Any) -> dict[str, Any]:
    return {"topic": TOPIC, "msg": {"log": "hostile"}, "msg_id": "2026-hostile",
            "timestamp": 1_700_000_000, "i": 1, "username": "eve", **fields}


# -- hostile frames --------------------------------------------------------------

frame = st.binary(max_size=64)
wrong_counts = st.lists(frame, min_size=1, max_size=1) | st.lists(frame, min_size=3, max_size=5)
not_json = st.tuples(st.just(TOPIC.encode()), st.binary(max_size=200))
deep = st.integers(65, 20_000).map(
    lambda n: (TOPIC.encode(), b'{"msg": ' + b"[" * n + b"]" * n + b"}"))
non_finite = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]).map(
    lambda literal: (TOPIC.encode(), b'{"msg": {"x": [1, ' + literal + b"]}}"))
huge_integers = (st.integers(min_value=2 ** 64) | st.integers(max_value=-(2 ** 63) - 1)).map(
    lambda n: (TOPIC.encode(), b'{"msg": {"n": ' + str(n).encode() + b"}}"))
FIELDS = ["topic", "msg_id", "id", "timestamp", "i", "username", "headers", "crypto",
          "signature", "certificate"]
wrong_fields = st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1).map(
    lambda fields: (TOPIC.encode(), dumps(envelope(**fields))))
bad_timestamps = (st.floats(min_value=4.2e9) | st.floats(max_value=-1e-9)
                  | st.integers(min_value=4_200_000_000, max_value=2 ** 63)).map(
    lambda t: (TOPIC.encode(), dumps(envelope(timestamp=t))))
huge_topics = st.binary(min_size=1025, max_size=4096).map(lambda t: (t, b'{"msg": {}}'))
nul_topics = st.text(max_size=20).map(lambda t: (("a\x00" + t).encode(), b'{"msg": {}}'))
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                     min_size=1, max_size=3).map(
    lambda s: (TOPIC.encode(), json.dumps(envelope(msg={"x": s, s: 1})).encode()))
nul_text = st.text(max_size=10).map(
    lambda s: (TOPIC.encode(), dumps(envelope(msg={"x": s + "\x00"}))))
anything = st.tuples(st.just(TOPIC.encode()), json_values.map(dumps))
wrapped = json_values.map(lambda v: (TOPIC.encode(), dumps(envelope(msg=v, msg_id=None))))

hostile_frames = st.one_of(wrong_counts, not_json, deep, non_finite, huge_integers,
                           wrong_fields, bad_timestamps, huge_topics, nul_topics, surrogates,
                           nul_text, anything, wrapped).map(lambda f: ("frames", list(f)))

# -- hostile user records ----------------------------------------------------------

digest = json_values | st.fixed_dictionaries(
    {}, optional={"every": json_values | st.sampled_from(["1h", "1 hour", "daily@25:00", "0s",
                                                          "daily@08:00", ""]),
                  "max_items": json_values | st.sampled_from([0, -1, "5", 1.5, True])})
section = json_values | st.fixed_dictionaries(
    {}, optional={"address": json_values, "nick": json_values, "digest": digest})
delivery = json_values | st.dictionaries(st.sampled_from(["email", "irc", "rss", "desktop"]),
                                         section, max_size=4)
not_null = json_values.filter(lambda v: v is not None)
records = st.fixed_dictionaries(
    {"name": st.sampled_from(HOSTILE_USERS)},
    optional={"emails": not_null | st.lists(json_values, max_size=3),
              "ircnicks": not_null, "groups": not_null, "delivery": delivery},
).map(lambda r: ("record", r))

steps = st.lists(st.one_of(st.just(("good", None)), hostile_frames, records), max_size=12)


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_every_good_message_is_delivered_whatever_else_arrives(
        world: HostileWorld, steps: list[tuple[str, Any]]) -> None:
    assert world.publisher is not None
    good: list[str] = []
    for kind, value in steps:
        if kind == "good":
            good.append(world.publisher.good(f"good {len(good)}"))
        elif kind == "frames":
            world.publisher.send(*value)
        else:
            fields = dict(value)
            world.write_user(fields.pop("name"), **fields)
    good.append(world.publisher.good("last"))
    world.wait_delivered(good, timeout=30)


def test_the_service_is_still_whole_after_all_that(world: HostileWorld) -> None:
    assert world.serve.proc is not None and world.serve.proc.poll() is None
    assert world.serve.get("/healthz")[0] == 200
    assert world.serve.metric("notifier_messages_rejected_total") > 0
    log = world.serve.log()
    assert "Traceback" not in log, log[-5000:]
