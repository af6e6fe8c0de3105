"""What the webpush destination gets from the render stage: a title, a plain body, the link."""

from __future__ import annotations

from notifier.render import Renderer

from .conftest import USER, render


def test_one_message(renderer: Renderer) -> None:
    note = render(renderer, "webpush", summary="alice <b>commented</b>\non the update")
    assert note.content["title"] == "bodhi: alice <b>commented</b> on the update"
    assert note.content["body"] == "alice in bodhi: python-requests"
    assert note.link == "https://bodhi.fedoraproject.org/updates/FEDORA-2024-1a2b3c4d5e"
    assert note.icon == "https://apps.fedoraproject.org/img/icons/bodhi.png"
    assert (note.destination, note.severity) == ("webpush", "info")


def test_a_digest(renderer: Renderer) -> None:
    items = [render(renderer, "webpush", msg_id=f"m{i}", summary=f"message {i}",
                    severity="warning" if i else "info") for i in range(3)]
    digest = renderer.render_digest("webpush", USER, items, "bob")
    assert digest.content["title"].startswith("[notifier] 3 notifications")
    assert "message 2" in digest.content["body"] and "message 0" in digest.content["body"]
    assert digest.severity == "warning" and digest.destination == "webpush"
