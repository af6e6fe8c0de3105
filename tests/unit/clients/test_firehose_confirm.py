"""The firehose's record of lines written and not yet confirmed by a PONG."""

from __future__ import annotations

from notifier.clients.firehose.channels import Channel
from notifier.clients.firehose.confirm import CONFIRM_EVERY, Unconfirmed
from notifier.clients.firehose.queue import Single
from notifier.config import FirehoseChannel


def single(n: int) -> Single:
    return Single("koji", {"msg_id": str(n)}, float(n))


def test_a_pong_confirms_the_lines_before_its_ping_only() -> None:
    channel = Channel(FirehoseChannel(name="#c"))
    u = Unconfirmed()
    assert u.ping_due(0.0) is None  # nothing written: no PING
    u.written(channel, single(1))
    u.written(channel, single(2))
    first = u.ping_due(0.0)
    assert first is not None
    u.written(channel, single(3))
    assert u.ping_due(0.5) is None  # at most one PING a CONFIRM_EVERY
    second = u.ping_due(CONFIRM_EVERY)
    assert second is not None and second != first
    assert u.confirmed("keepalive") == 0
    assert u.confirmed(first) == 2
    assert [e.record["msg_id"] for _, _, e in u.lines] == ["3"]  # type: ignore[union-attr]
    u.written(channel, single(4))
    assert [e.record["msg_id"] for _, e in u.take()] == ["3", "4"]  # type: ignore[union-attr]
    assert len(u) == 0 and u.confirmed(second) == 0
