"""The firehose bot posting to Matrix rooms of a real Synapse, read by real clients.

One homeserver serves the module (rate limits out of reach); each test makes
its own rooms, public, created by a person who is so their moderator (power
level 100), and runs its own bot on a real relay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from notifier.clients.firehose.commands import MATRIX_HELP
from notifier.clients.firehose.lines import Colours
from notifier.clients.firehose.matrix_lines import HEX
from tests.conftest import wait_for
from tests.integration.synapse import Account, MatrixPerson, Message, Synapse

from .firehose_peers import Bot, Bus
from .matrix_peers import (
    FOLD,
    direct_chat,
    joined,
    make_room,
    matrix,
    membership,
    promote,
    read,
    room_names,
    say,
    server,
    total,
)

pytestmark = pytest.mark.integration

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
        assert said(MATRIX_HELP[0])(got)
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
            "preset": "private_chat", "room_alias_name": f"{name}{next(room_names)}"})
        answer.raise_for_status()
        rooms[name] = answer.json()["room_id"]
    alias = mod.call("GET", f"/rooms/{quote(rooms['firehose-private'], safe='')}/state/"
                            "m.room.canonical_alias").json()["alias"]
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})

    try:
        wait_for(lambda: server(bot).channels[alias.lower()].joins >= 1,
                 "the bot's join refused (invitation only)", 20)
        assert not server(bot).channels[alias.lower()].joined
        for room_id in rooms.values():
            mod.call("POST", f"/rooms/{quote(room_id, safe='')}/invite",
                     {"user_id": me}).raise_for_status()
        joined(bot)
        wait_for(lambda: membership(mod, rooms["elsewhere"], me) == "leave",
                 "the other invitation declined", 20)
    finally:
        bot.close()
    assert membership(mod, rooms["firehose-private"], me) == "join"


def test_a_direct_chat_takes_help_and_last_and_refuses_pause(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod, me = accounts["mod"], accounts["firehose"].user_id
    room_id, alias = make_room(mod)
    person = MatrixPerson(mod)  # the room's creator: a moderator there, not in a direct chat
    person.poll(0)
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})

    def from_bot(got: list[Message], where: str) -> list[str]:
        return [m.content["body"] for m in got if m.sender == me and m.room_id == where]

    try:
        joined(bot)
        for i in range(3):
            bus.publish("koji", "buildsys.tag", {"log": f"build {i}"})
        got = read(person, lambda g: len(from_bot(g, room_id)) == 3, "three lines in the room")
        dm = direct_chat(mod, me)
        wait_for(lambda: membership(mod, dm, me) == "join", "the direct chat accepted", 20)
        say(mod, dm, "help")
        got += read(person, lambda g: len(from_bot(g, dm)) >= len(MATRIX_HELP), "the help")
        say(mod, dm, "last 2")
        got += read(person, lambda g: len(from_bot(g, dm)) >= 2,
                    "the answer to last 2")
        say(mod, dm, "pause")
        got += read(person, lambda g: any("pause is for" in b for b in from_bot(g, dm)),
                    "pause refused")
        say(mod, dm, "frobnicate")
        got += read(person, lambda g: any("I do not know" in b for b in from_bot(g, dm)),
                    "an unknown command answered")
        assert not server(bot).channels[alias.lower()].paused
        bus.publish("koji", "buildsys.tag", {"log": "still posting"})
        got += read(person, lambda g: "[koji] still posting" in from_bot(g, room_id),
                    "the room still posting")
        got += person.poll(1.0)
    finally:
        bot.close()
    private = from_bot(got, dm)
    assert private[:len(MATRIX_HELP)] == list(MATRIX_HELP)
    assert private[len(MATRIX_HELP):len(MATRIX_HELP) + 2] == ["[koji] build 1", "[koji] build 2"]
    assert private[-2].startswith("pause is for a room's moderators, said in that room")
    assert private[-1].startswith("I do not know 'frobnicate'; I know help, last")
    assert len(private) == len(MATRIX_HELP) + 4  # no firehose line in the direct chat
    # nothing said in the direct chat, nor answered there, reached the room
    assert from_bot(got, room_id) == [*(f"[koji] build {i}" for i in range(3)),
                                      "[koji] still posting"]
    assert accounts["firehose"].account_data("m.direct")[mod.user_id] == [dm]


def test_the_direct_room_made_for_last_takes_commands_after_a_restart(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    mod, guest, me = accounts["mod"], accounts["guest"], accounts["firehose"].user_id
    room_id, alias = make_room(mod, guest)
    asking = MatrixPerson(guest)
    asking.poll(0)

    def private(got: list[Message], where: str | None = None) -> list[Message]:
        return [m for m in got if m.sender == me and m.room_id != room_id
                and m.room_id == (where or m.room_id) and "first" in m.content["body"]]

    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})
    try:
        joined(bot)
        bus.publish("koji", "buildsys.tag", {"log": "first"})
        wait_for(lambda: any(r.get("summary") == "first" for r in bot.firehose.history),
                 "the bot to keep the line", 10)
        say(guest, room_id, "firehose: last 1")
        got = read(asking, private, "the answer to last 1")
    finally:
        bot.close()
    (answer,) = private(got)
    dm = answer.room_id
    assert answer.content["body"] == "[koji] first"
    again = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})
    try:
        joined(again)
        bus.publish("koji", "buildsys.tag", {"log": "first again"})
        wait_for(lambda: any(r.get("summary") == "first again" for r in again.firehose.history),
                 "the bot to keep the line", 10)
        say(guest, dm, "last 1 first")  # not addressed: a direct room needs no name
        got = read(asking, lambda g: private(g, dm), f"last 1 in the direct room {dm}")
        say(guest, dm, "firehose: resume")  # addressed works too; refused all the same
        got += read(asking, lambda g: any(m.room_id == dm for m in g), "resume refused")
    finally:
        again.close()
    assert [m.content["body"] for m in got if m.room_id == dm] == [
        "[koji] first again",
        "resume is for a room's moderators, said in that room (my name, a colon, resume); "
        "not here."]


def test_direct_invitations_are_accepted_one_a_person_within_a_cap_and_a_rate(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    # A bot account of its own: invitations other tests left to the module's bot would count
    # towards this one's rate as it starts.
    bot_account = synapse.register(f"firehose{next(room_names)}")
    mod, guest, me = accounts["mod"], accounts["guest"], bot_account.user_id
    other = synapse.register(f"other{next(room_names)}")
    room_id, alias = make_room(mod)
    bot = Bot(bus, {"matrix": [matrix(synapse, bot_account, [{"room": alias}])]})
    server(bot).direct.limit, server(bot).direct.per_minute = 2, 4
    try:
        joined(bot)
        chats: list[tuple[Account, str]] = []
        for owner in (guest, guest, mod, other):
            chats.append((owner, direct_chat(owner, me)))
            wait_for(lambda: membership(*chats[-1], me) == "join", "the direct chat joined", 20)
        # the older chat of the same person, then the least recently heard from, are left
        wait_for(lambda: all(membership(o, d, me) == "leave" for o, d in chats[:2]),
                 "the older direct chats left", 20)
        not_direct, fifth = direct_chat(guest, me, is_direct=False), direct_chat(mod, me)
        wait_for(lambda: membership(guest, not_direct, me) == "leave",
                 "an invitation to a room that is no direct chat declined", 20)
        wait_for(lambda: membership(mod, fifth, me) == "leave",
                 "a fifth direct invitation in a minute declined", 20)
        talking = MatrixPerson(other)
        talking.poll(0)
        say(other, chats[3][1], "help")
        got = read(talking, lambda g: len(g) >= len(MATRIX_HELP), "help in the kept chat")
    finally:
        bot.close()
    assert [m.content["body"] for m in got] == list(MATRIX_HELP)
    assert [membership(o, d, me) for o, d in chats] == ["leave", "leave", "join", "join"]
    direct = bot_account.account_data("m.direct")
    assert guest.user_id not in direct
    assert (direct[mod.user_id], direct[other.user_id]) == ([chats[2][1]], [chats[3][1]])


def test_an_encrypted_direct_chat_is_told_once_that_the_bot_cannot_read_it(
        synapse: Synapse, accounts: dict[str, Account], bus: Bus) -> None:
    guest, me = accounts["guest"], accounts["firehose"].user_id
    _, alias = make_room(accounts["mod"])
    bot = Bot(bus, {"matrix": [matrix(synapse, accounts["firehose"], [{"room": alias}])]})
    try:
        joined(bot)
        answer = guest.call("POST", "/createRoom", {
            "preset": "trusted_private_chat", "is_direct": True, "invite": [me],
            "initial_state": [{"type": "m.room.encryption", "state_key": "",
                               "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]})
        answer.raise_for_status()
        dm = answer.json()["room_id"]
        wait_for(lambda: membership(guest, dm, me) == "join", "the direct chat accepted", 20)
        person = MatrixPerson(guest)
        person.poll(0)
        for i in range(2):
            guest.call("PUT", f"/rooms/{quote(dm, safe='')}/send/m.room.encrypted/e{i}{dm}", {
                "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACg", "device_id": "D",
                "sender_key": "k", "session_id": "s"}).raise_for_status()
        got = read(person, lambda g: any(m.room_id == dm for m in g), "the bot's answer")
        got += person.poll(1.0)
    finally:
        bot.close()
    assert [m.content["body"] for m in got if m.room_id == dm] == [
        "I cannot read encrypted messages: talk to me in a direct chat without encryption, "
        "or in one of my rooms."]


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
