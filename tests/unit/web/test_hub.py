"""A stream's queue: bounded, in order, nothing twice."""

from __future__ import annotations

import asyncio

from notifier.web.hub import Subscriber


def test_take_gives_each_id_once_in_order() -> None:
    async def go() -> None:
        sub = Subscriber("alice", last=2, limit=10)
        sub.offer([(1, b"a"), (2, b"b"), (3, b"c")])
        sub.offer([(3, b"c"), (4, b"d")])
        assert await sub.wait(0.01)
        assert sub.take() == b"cd"
        assert sub.last == 4
        assert not await sub.wait(0.01)
        assert sub.take() == b""

    asyncio.run(go())


def test_a_subscriber_that_falls_behind_is_dropped() -> None:
    async def go() -> None:
        dropped: list[str] = []
        sub = Subscriber("alice", last=0, limit=3)
        sub.on_drop = lambda: dropped.append("dropped")
        sub.offer([(1, b"a"), (2, b"b")])
        sub.offer([(3, b"c"), (4, b"d")])
        assert sub.closed == "slow" and dropped == ["dropped"]
        sub.offer([(5, b"e")])  # nothing more once closed
        assert dropped == ["dropped"]
        assert await sub.wait(0.01)

    asyncio.run(go())
