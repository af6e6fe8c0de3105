"""What the server tells of the firehose's channels: joins, parts, kicks, refusals, modes.

A part of :class:`~.network.Network` (which it is mixed into): it keeps each
:class:`~.channels.Channel`'s ``joined``, operators and ``+c`` up to date,
and joins again with backoff after a kick, a part or a refused join.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ...backoff import backoff_delay
from .channels import Channel
from .metrics import FirehoseMetrics

log = logging.getLogger(__name__)

REJOIN_BASE, REJOIN_MAX = 5.0, 300.0


class ChannelEvents:
    """The channel events' handlers; the network provides the attributes below."""

    name: str
    nick: str
    channels: dict[str, Channel]
    metrics: FirehoseMetrics

    def _channel(self, name: str) -> Channel | None:
        return self.channels.get(name.lower())

    def _on_join(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.target)
        if channel is not None and event.source.nick == self.nick:
            channel.joined, channel.rejoins = True, 0
            channel.ops.clear()
            conn.send_items("MODE", channel.name)
            log.info("%s: joined %s", self.name, channel.name)

    def _on_part(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.target)
        if channel is not None:
            if event.source.nick == self.nick:
                channel.joined = False
                self._schedule_rejoin(channel, "parted")
            channel.ops.discard(event.source.nick.lower())

    def _on_kick(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.target)
        if channel is None:
            return
        if event.arguments and event.arguments[0] == self.nick:
            channel.joined = False
            self._schedule_rejoin(channel, f"kicked by {event.source.nick}")
        elif event.arguments:
            channel.ops.discard(event.arguments[0].lower())

    def _on_refused(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.arguments[0]) if event.arguments else None
        if channel is not None:
            self._schedule_rejoin(channel, f"cannot join: {' '.join(event.arguments[1:])}")

    def _on_refused_line(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.arguments[0]) if event.arguments else None
        if channel is not None:
            self.metrics.count(self.name, channel.name, "refused")
            log.warning("%s: %s refused a line: %s", self.name, channel.name,
                        " ".join(event.arguments[1:]))

    def _schedule_rejoin(self, channel: Channel, why: str) -> None:
        delay = backoff_delay(channel.rejoins, REJOIN_BASE, REJOIN_MAX)
        channel.rejoins += 1
        channel.rejoin_at = time.monotonic() + delay
        log.warning("%s: %s: %s; joining again in %.1f s", self.name, channel.name, why, delay)

    def _on_names(self, conn: Any, event: Any) -> None:
        # arguments: visibility, channel, "nick @op +voice ..."
        channel = self._channel(event.arguments[1]) if len(event.arguments) > 2 else None
        if channel is not None:
            channel.names(event.arguments[2])

    def _on_mode(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.target)
        if channel is not None and event.arguments:
            channel.modes(event.arguments[0], event.arguments[1:])

    def _on_channel_modes(self, conn: Any, event: Any) -> None:
        channel = self._channel(event.arguments[0]) if event.arguments else None
        if channel is not None and len(event.arguments) > 1:
            channel.modes(event.arguments[1], event.arguments[2:])
