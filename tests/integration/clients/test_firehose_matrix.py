"""The firehose bot posting to Matrix rooms of a real Synapse, read by real clients.

One homeserver serves the module (rate limits out of reach); each test makes
its own rooms, public, created by a person who is so their moderator (power
level 100), and runs its own bot on a real relay.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from notifier.clients.firehose.lines import Colours
from notifier.clients.firehose.matrix import MatrixServer
from notifier.clients.firehose.matrix_lines import HEX
from tests.conftest import wait_for
from tests.integration.synapse import Account, MatrixPerson, Message, Synapse

from .firehose_peers import Bot, Bus

pytestmark = pytest.mark.integration

FOLD = re.compile(r"^(?P<app>[\w-]+): (?P<n>\d+) more \(")
_names = itertools.count()


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    server = Synapse(tmp_path_factory.mktemp("synapse")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accounts(synapse: Synapse) -> dict[str, Account]:
    return {name: synapse.register(name) for name in ("firehose", "mod", "guest")}


@pytest.fixture
def bus() -> Iterator[Bus]:
    running = Bus()
    try:
        yield running
    finally:
        running.close()


def make_room(owner: Account, *others: Account) -> tuple[str, str]:
    """A public room of ``owner`` that ``others`` joined: (room id, alias)."""
    name = f"firehose{next(_names)}"
    answer = owner.call("POST", "/createRoom", {"preset": "public_chat",
                                                "room_alias_name": name})
    answer.raise_for_status()
    room_id = answer.json()["room_id"]
    for other in others:
        other.call("POST", f"/join/{quote(room_id, safe='')}", json={}).raise_for_status()
    return room_id, f"#{name}:{Synapse.server_name}"


def say(account: Account, room_id: str, text: str) -> None:
    txn = f"t{time.monotonic_ns()}"
    account.call("PUT", f"/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}",
                 {"msgtype": "m.text", "body": text}).raise_for_status()


def promote(owner: Account, room_id: str, user: Account, level: int) -> None:
    path = f"/rooms/{quote(room_id, safe='')}/state/m.room.power_levels"
    levels = owner.call("GET", path).json()
    levels.setdefault("users", {})[user.user_id] = level
    owner.call("PUT", path, levels).raise_for_status()


def matrix(synapse: Synapse, bot: Account, rooms: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:
    """A ``[[firehose.matrix]]`` whose rooms leave out the bus probes."""
    for room in rooms:
        room.setdefault("exclude", {}).setdefault("applications", []).append("probe")
    return {"name": "synapse", "homeserver": synapse.url, "user_id": bot.user_id,
            "access_token": bot.token, "line_rate": 5.0, "burst": 5, "rooms": rooms, **extra}


def server(bot: Bot) -> MatrixServer:
    found = bot.firehose.networks[0]
    assert isinstance(found, MatrixServer)
    return found


def joined(bot: Bot) -> None:
    wait_for(lambda: server(bot).connected and all(
        r.joined for r in server(bot).channels.values()), "the bot to join its rooms", 20)


def read(person: MatrixPerson, until: Any, what: str, timeout: float = 20.0
         ) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        assert left > 0, f"{what}: saw {[m.content.get('body') for m in got]}"
        got += person.poll(min(1.0, left))
    return got


def test_a_filtered_message_is_a_notice_with_a_coloured_html_body(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod = accounts["mod"]
    room_id, alias = make_room(mod)
    person = MatrixPerson(mod)
    person.poll(0)
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [
        {"room": alias, "include": {"applications": ["koji"]}}])]})
    try:
        joined(bot)
        bus.publish("bodhi", "update.comment", {"comment": {"text": "not here"}})
        bus.publish("koji", "buildsys.tag", {"log": "tagged <foo> https://koji.example/t/1"})
        got = read(person, lambda g: any("tagged" in m.content["body"] for m in g),
                   "the koji line")
        got += person.poll(0.5)
    finally:
        bot.close()
    lines = [m for m in got if m.sender == accounts["firehose"].user_id]
    assert [m.room_id for m in lines] == [room_id]
    colour = HEX[Colours().of("koji")]
    assert lines[0].content == {
        "msgtype": "m.notice", "format": "org.matrix.custom.html",
        "body": "[koji] tagged <foo> https://koji.example/t/1",
        "formatted_body": f'<font color="{colour}" data-mx-color="{colour}">[koji]</font> '
                          'tagged &lt;foo&gt; <a href="https://koji.example/t/1">'
                          'https://koji.example/t/1</a>'}
    assert server(bot).metrics.get("synapse", alias, "posted") == 1


def test_a_storm_of_300_messages_in_3_s_is_folded_and_fully_counted(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod = accounts["mod"]
    room_id, _ = make_room(mod)
    person = MatrixPerson(mod)
    person.poll(0)
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [
        {"room": room_id, "max_delay": 2.0}], line_rate=2.0, burst=2)]})
    apps = ("koji", "bodhi", "copr")
    started = time.monotonic()
    try:
        joined(bot)
        for i in range(300):
            bus.publish(apps[i % 3], f"thing.{i % 2}", {"log": f"storm {i}"})
            time.sleep(max(0.0, started + 0.01 * i - time.monotonic()))
        published = time.monotonic()

        def counted(got: list[Message]) -> bool:
            return total(got, room_id) >= 300

        got = read(person, counted, "every storm message posted or counted", 30)
        drained = time.monotonic()
        got += person.poll(0.5)
    finally:
        bot.close()
    lines = [m.content["body"] for m in got
             if m.sender == accounts["firehose"].user_id and m.room_id == room_id]
    folds = [line for line in lines if FOLD.match(line)]
    assert total(got, room_id) == 300, lines
    assert folds, "the storm was not folded"
    assert len(lines) < 60, f"{len(lines)} lines for 300 messages"
    assert drained - published < 2.0 + 10, "the room fell behind"
    metrics = server(bot).metrics
    assert metrics.get("synapse", room_id, "posted") + \
        metrics.get("synapse", room_id, "folded") == 300


def total(got: list[Message], room_id: str) -> int:
    """Messages posted to ``room_id``, alone or counted in fold lines."""
    count = 0
    for message in got:
        if message.room_id != room_id:
            continue
        body = message.content.get("body", "")
        fold = FOLD.match(body)
        count += int(fold["n"]) if fold else body.startswith("[")
    return count


def test_help_for_all_and_pause_for_moderators_and_creators_only(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod, guest = accounts["mod"], accounts["guest"]
    room_id, alias = make_room(mod, guest)
    person = MatrixPerson(mod)
    person.poll(0)
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})
    me = accounts["firehose"].user_id

    def said(text: str) -> Any:
        return lambda g: any(text in m.content["body"] for m in g
                             if m.sender == me and m.room_id == room_id)

    try:
        joined(bot)
        say(guest, room_id, "firehose: help")
        got = read(person, said("pause / resume"), "the help text")
        assert said("I post the message bus here")(got)
        say(guest, room_id, "firehose: pause")
        read(person, said(f"Only operators of {alias}"), "the guest refused")
        assert not server(bot).channels[alias.lower()].paused
        promote(mod, room_id, guest, 50)
        say(guest, room_id, "firehose, pause")
        read(person, said(f"{alias} paused"), "the promoted moderator's pause")
        assert server(bot).channels[alias.lower()].paused
        bus.publish("koji", "buildsys.tag", {"log": "while paused"})
        wait_for(lambda: server(bot).metrics.get("synapse", alias, "dropped") == 1,
                 "the paused message counted as dropped", 10)
        say(mod, room_id, "firehose: resume")
        read(person, said(f"{alias} resumed"), "the creator's resume")
        bus.publish("koji", "buildsys.tag", {"log": "after resume"})
        got = read(person, said("after resume"), "a line after resume")
    finally:
        bot.close()
    assert not said("while paused")(got)


def test_m_limit_exceeded_holds_the_lines_and_loses_none(tmp_path: Any, bus: Bus) -> None:
    limited = Synapse(tmp_path / "limited",
                      limits={"rc_message": {"per_second": 1, "burst_count": 3}}).start()
    try:
        bot_account, mod = limited.register("firehose"), limited.register("mod")
        room_id, _ = make_room(mod)
        person = MatrixPerson(mod)
        person.poll(0)
        bot = Bot(bus, {"matrix": [matrix(limited, bot_account, [
            {"room": room_id, "max_delay": 30.0}], line_rate=20.0, burst=20)]})
        try:
            joined(bot)
            for i in range(8):
                bus.publish("koji", "buildsys.tag", {"log": f"limited {i}"})
            got = read(person, lambda g: total(g, room_id) >= 8, "all eight lines", 30)
            got += person.poll(0.5)
        finally:
            bot.close()
    finally:
        limited.stop()
    bodies = [m.content["body"] for m in got if m.room_id == room_id]
    assert total(got, room_id) == 8, bodies
    assert server(bot).metrics.get("synapse", "", "limited") >= 1


def test_last_answers_the_asker_in_a_direct_room(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod, guest = accounts["mod"], accounts["guest"]
    room_id, alias = make_room(mod, guest)
    watching, asking = MatrixPerson(mod), MatrixPerson(guest)
    watching.poll(0)
    asking.poll(0)
    me = accounts["firehose"].user_id
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})

    def from_bot(got: list[Message], inside: bool) -> list[Message]:
        return [m for m in got if m.sender == me and (m.room_id == room_id) == inside]

    try:
        joined(bot)
        for i in range(3):
            bus.publish("koji", "buildsys.tag", {"log": f"build {i}"})
        read(watching, lambda g: len(from_bot(g, True)) == 3, "three lines in the room")
        say(guest, room_id, "firehose: last 2")
        # the guest's client joins the direct room it is invited to, and reads it
        got = read(asking, lambda g: len(from_bot(g, False)) >= 2, "the answer to last 2")
        say(guest, room_id, "firehose: last 1 nothing-like-this")
        got += read(asking, lambda g: len(from_bot(g, False)) >= 1, "the second answer")
        room_lines = from_bot(watching.poll(1.0), True)
    finally:
        bot.close()
    private = from_bot(got, False)
    assert [m.content["body"] for m in private] == [
        "[koji] build 1", "[koji] build 2", "Nothing in my history matches."]
    assert len({m.room_id for m in private}) == 1  # the same direct room, found again
    assert room_lines == []  # nothing of it in the room
    direct = accounts["firehose"].account_data("m.direct")
    assert direct == {guest.user_id: [private[0].room_id]}


def test_invitations_are_accepted_to_configured_rooms_only(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod, me = accounts["mod"], accounts["firehose"].user_id
    rooms = {}
    for name in ("firehose-private", "elsewhere"):
        answer = mod.call("POST", "/createRoom", {
            "preset": "private_chat", "room_alias_name": f"{name}{next(_names)}"})
        answer.raise_for_status()
        rooms[name] = answer.json()["room_id"]
    alias = mod.call("GET", f"/rooms/{quote(rooms['firehose-private'], safe='')}/state/"
                            "m.room.canonical_alias").json()["alias"]
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})

    def membership(room_id: str) -> str | None:
        answer = mod.call("GET", f"/rooms/{quote(room_id, safe='')}/state/m.room.member/"
                                 f"{quote(me, safe='')}")
        return answer.json().get("membership") if answer.status_code == 200 else None

    try:
        wait_for(lambda: server(bot).channels[alias.lower()].joins >= 1,
                 "the bot's join refused (invitation only)", 20)
        assert not server(bot).channels[alias.lower()].joined
        for room_id in rooms.values():
            mod.call("POST", f"/rooms/{quote(room_id, safe='')}/invite",
                     {"user_id": me}).raise_for_status()
        joined(bot)
        wait_for(lambda: membership(rooms["elsewhere"]) == "leave",
                 "the other invitation declined", 20)
    finally:
        bot.close()
    assert membership(rooms["firehose-private"]) == "join"


def test_a_homeserver_restart_loses_no_line(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    # last in the module: it stops and starts the shared homeserver
    mod = accounts["mod"]
    room_id, _ = make_room(mod)
    person = MatrixPerson(mod)
    person.poll(0)
    me = accounts["firehose"].user_id
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [
        {"room": room_id, "max_delay": 120.0}], line_rate=5.0, burst=5)]})

    def bodies(got: list[Message]) -> list[str]:
        return [m.content["body"] for m in got if m.sender == me and m.room_id == room_id]

    try:
        joined(bot)
        bus.publish("koji", "buildsys.tag", {"log": "before"})
        got = read(person, lambda g: "[koji] before" in bodies(g), "the first line")
        # lines on their way as the homeserver stops, and lines while it is down
        for i in range(5):
            bus.publish("koji", "buildsys.tag", {"log": f"stopping {i}"})
        synapse.stop()
        wait_for(lambda: not server(bot).connected, "the bot to notice", 20)
        for i in range(3):
            bus.publish("koji", "buildsys.tag", {"log": f"down {i}"})
        wait_for(lambda: server(bot).channels[room_id.lower()].queue.oldest() is not None,
                 "lines waiting", 5)
        synapse.start()
        wait_for(lambda: server(bot).connected, "the bot to sync again", 60)
        bus.publish("koji", "buildsys.tag", {"log": "after"})
        expected = {f"[koji] {w}" for w in
                    [*(f"stopping {i}" for i in range(5)), *(f"down {i}" for i in range(3)),
                     "after"]}
        got += read(person, lambda g: expected <= set(bodies(g)), "every line", 40)
        got += person.poll(0.5)
    finally:
        bot.close()
    posted = bodies(got)
    assert expected | {"[koji] before"} == set(posted), posted
    # a line may come twice across the restart, never out of its place among the rest
    firsts = list(dict.fromkeys(posted))
    assert firsts == ["[koji] before", *(f"[koji] stopping {i}" for i in range(5)),
                      *(f"[koji] down {i}" for i in range(3)), "[koji] after"]
