"""What the Matrix firehose takes as a command, in a room and in a direct room, and how
the commands answer there (nio's own event parsing, a MatrixServer that is not connected)."""

from __future__ import annotations

from collections import deque
from itertools import count
from typing import Any

import pytest
from nio import Event

from notifier.clients.firehose.commands import HELP, MATRIX_HELP, Commands
from notifier.clients.firehose.lines import Colours, strip_formatting
from notifier.clients.firehose.matrix import MatrixServer
from notifier.clients.firehose.matrix_commands import addressed, commands_in
from notifier.clients.firehose.metrics import FirehoseMetrics
from notifier.config import config_from_dict

ME = "@firehose:example.org"
NAMES = [ME, "firehose", "Fedora Firehose"]


def events(*raw: dict[str, Any]) -> list[Event]:
    ids = count()
    parsed = [Event.parse_event({"event_id": f"$e{next(ids)}", "origin_server_ts": 1,
                                 "room_id": "!r:example.org", **e}) for e in raw]
    assert all(isinstance(e, Event) for e in parsed), parsed
    return parsed


def text(sender: str, body: str, msgtype: str = "m.text") -> dict[str, Any]:
    return {"type": "m.room.message", "sender": sender,
            "content": {"msgtype": msgtype, "body": body}}


def join(user: str, before: str | None = None) -> dict[str, Any]:
    event = {"type": "m.room.member", "sender": user, "state_key": user,
             "content": {"membership": "join"}}
    if before:
        event["unsigned"] = {"prev_content": {"membership": before}}
    return event


def encrypted(sender: str) -> dict[str, Any]:
    return {"type": "m.room.encrypted", "sender": sender, "content": {
        "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn", "device_id": "DEV",
        "sender_key": "key", "session_id": "session"}}


@pytest.mark.parametrize(("body", "command"), [
    ("firehose: last 5 koji", "last 5 koji"),
    ("  FIREHOSE, help ", "help"),
    ("Fedora Firehose: pause", "pause"),
    (f"{ME}: resume", "resume"),
    ("firehose help", None),
    ("firehoses: help", None),
    ("hello firehose: help", None),
])
def test_a_command_in_a_room_starts_with_a_name_of_the_bot(body: str, command: str | None
                                                           ) -> None:
    assert addressed(NAMES, body) == command


def test_a_room_takes_addressed_commands_and_a_direct_room_every_message() -> None:
    timeline = events(text("@a:x", "firehose: help"), text("@a:x", "last 2"),
                      text(ME, "firehose: pause"), text("@b:x", "firehose: x", "m.notice"))
    assert commands_in(timeline, ME, NAMES, direct=False) == [("@a:x", "help")]
    assert commands_in(timeline, ME, NAMES, direct=True) == [("@a:x", "help"),
                                                            ("@a:x", "last 2")]


def test_what_was_said_before_the_bot_joined_is_history() -> None:
    timeline = events(text("@a:x", "firehose: pause"), join(ME), text("@a:x", "firehose: help"),
                      join(ME, before="join"), text("@a:x", "firehose: last"))
    assert commands_in(timeline, ME, NAMES, direct=False) == [("@a:x", "help"),
                                                             ("@a:x", "last")]


def test_an_encrypted_message_is_noted_in_a_direct_room_only() -> None:
    timeline = events(encrypted("@a:x"))
    assert commands_in(timeline, ME, NAMES, direct=True) == [("@a:x", None)]
    assert commands_in(timeline, ME, NAMES, direct=False) == []


@pytest.fixture
def server() -> MatrixServer:
    config = config_from_dict({"firehose": {"matrix": [{
        "homeserver": "https://matrix.example.org", "user_id": ME, "access_token": "t",
        "rooms": [{"room": "!room:example.org"}]}]}}, "<test>")
    history: deque[dict[str, Any]] = deque([{"app": "koji", "summary": "built"}])
    return MatrixServer(config.firehose.matrix[0], Colours(), FirehoseMetrics(),
                        Commands(history, Colours()))


def test_a_direct_room_answers_there_and_refuses_pause(server: MatrixServer) -> None:
    dm = "!dm:example.org"
    for said in ("help", "last 1", "pause", "resume", "what"):
        server._command(dm, None, "@a:x", "@a:x", said)
    server._command(dm, None, "@a:x", "@a:x", None)
    server._command(dm, None, "@a:x", "@a:x", None)  # told once a room
    assert {room for room, _ in server.replies} == {dm}
    answers = [strip_formatting(line) for _, line in server.replies]
    assert answers[:len(MATRIX_HELP)] == list(MATRIX_HELP) and MATRIX_HELP != HELP
    assert answers[len(MATRIX_HELP):] == [
        "[koji] built",
        "pause is for a room's moderators, said in that room (my name, a colon, pause); "
        "not here.",
        "resume is for a room's moderators, said in that room (my name, a colon, resume); "
        "not here.",
        "I do not know 'what'; I know help, last [N] [filter], pause and resume. Try help.",
        "I cannot read encrypted messages: talk to me in a direct chat without encryption, "
        "or in one of my rooms."]
    assert not server.channels["!room:example.org"].paused


def test_in_a_room_last_goes_to_the_asker_and_the_rest_to_the_room(
        server: MatrixServer) -> None:
    server._command("!room:example.org", "!room:example.org", None, "@a:x", "last 1")
    server._command("!room:example.org", "!room:example.org", None, "@a:x", "what")
    assert [(to, strip_formatting(line)) for to, line in server.replies] == [
        ("@a:x", "[koji] built"),
        ("!room:example.org",
         "I do not know 'what'; I know help, last [N] [filter], pause and resume. Try help.")]
