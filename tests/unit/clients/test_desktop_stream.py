"""Reading Server-Sent Events, and the last id kept on disk."""

from __future__ import annotations

from pathlib import Path

from notifier.clients.desktop.notify import plain_text
from notifier.clients.desktop.stream import LastId, events


def test_events_with_ids_names_and_the_opening_id_alone() -> None:
    lines = ["retry: 2000", "id: 7", "", ": keep-alive", "",
             "id: 8", "event: notification", 'data: {"a": 1}', "",
             "data: one", "data: two", ""]
    assert list(events(iter(lines))) == [("7", "message", None),
                                         ("8", "notification", '{"a": 1}'),
                                         (None, "message", "one\ntwo")]


def test_an_event_cut_off_before_its_blank_line_is_not_given() -> None:
    assert list(events(iter(["id: 9", "event: notification", "data: {}"]))) == []


def test_last_id_is_kept_per_server_and_user(tmp_path: Path) -> None:
    path = tmp_path / "state" / "desktop.json"
    LastId(path, "https://a alice").save(41)
    assert LastId(path, "https://a alice").load() == 41
    assert LastId(path, "https://b alice").load() is None
    path.write_text("not json")
    assert LastId(path, "https://a alice").load() is None


def test_plain_text_removes_tags_and_decodes_entities() -> None:
    assert plain_text('a <a href="x">link</a> &amp; &lt;b&gt;') == "a link & <b>"
