"""From bus messages to outbox rows: describe, match, render, record.

The stages run in this order for a batch of messages, and the batch is
written in one transaction (history and outbox together), so the outbox
keeps up with the bus and a crash loses nothing that reached the history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import Config
from ..notification import Notification
from ..storage.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)


class Describes(Protocol):
    def describe(self, message: dict[str, Any]) -> dict[str, Any]: ...


class Matches(Protocol):
    def match(self, record: Mapping[str, Any], explain: bool = False) -> list[Any]: ...


class Renders(Protocol):
    def render(self, destination: str, described: dict[str, Any], envelope: dict[str, Any],
               user: dict[str, Any], rules: list[str], address: str,
               shared: dict[str, Any] | None = None) -> Notification: ...


def address_for(user: Mapping[str, Any], destination: str) -> str | None:
    """Where ``destination`` reaches ``user``: their setting, else the first email or nick."""
    settings = (user.get("delivery") or {}).get(destination) or {}
    if destination == "email":
        return settings.get("address") or next(iter(user.get("emails") or ()), None)
    if destination == "irc":
        return settings.get("nick") or next(iter(user.get("ircnicks") or ()), None)
    return user["name"]


def digest_settings(user: Mapping[str, Any], destination: str) -> dict[str, Any] | None:
    """The user's digest settings for ``destination`` (``every``, ``max_items``), or None."""
    settings = (user.get("delivery") or {}).get(destination) or {}
    digest = settings.get("digest") if isinstance(settings, dict) else None
    return digest or None


@dataclass
class BatchResult:
    """What one batch did."""

    messages: int = 0
    new_messages: int = 0
    matched: int = 0
    notifications: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    per_destination: dict[str, int] = field(default_factory=dict)
    #: new pending rows claimed for this process's workers (see ``claim``), by id
    claimed: list[OutboxRow] = field(default_factory=list)
    #: notifications recorded already sent (the live stream's), by destination
    sent_at_once: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Turns batches of envelopes into history and outbox rows."""

    def __init__(self, config: Config, outbox: Outbox, describer: Describes,
                 matcher: Matches, renderer: Renders,
                 users: Callable[[str], dict[str, Any] | None]):
        self.config = config
        self.outbox = outbox
        self.describer = describer
        self.matcher = matcher
        self.renderer = renderer
        self.users = users

    def first_state(self, user: Mapping[str, Any], destination: str) -> str:
        """``held`` for a digest, ``sent`` for what the live stream alone delivers, else pending."""
        if destination == "desktop" and user["name"] != self.config.dbus.user:
            return "sent"  # reaches the user through /users/<user>/stream
        if digest_settings(user, destination):
            return "held"
        return "pending"

    def process(self, envelopes: list[dict[str, Any]], claim: Container[str] = ()
                ) -> BatchResult:
        """Describe, match and render ``envelopes``; record everything in one transaction.

        New pending notifications of the destinations in ``claim`` are
        recorded claimed and come back in :attr:`BatchResult.claimed`, for
        the caller's workers.
        """
        result = BatchResult(messages=len(envelopes))
        notifications: list[tuple[Notification, str]] = []
        for envelope in envelopes:
            described = self.describer.describe(envelope)
            recipients = self.matcher.match(described)
            if recipients:
                result.matched += 1
            shared: dict[str, Any] = {}  # what renders the same for every recipient
            for name, rules, destinations, _ in recipients:
                user = self.users(name)
                if user is None:
                    result.skipped["unknown-user"] = result.skipped.get("unknown-user", 0) + 1
                    log.warning("rule of unknown user %r matched %s", name,
                                described.get("msg_id"))
                    continue
                for destination in destinations:
                    address = address_for(user, destination)
                    if not address:
                        result.skipped["no-address"] = result.skipped.get("no-address", 0) + 1
                        log.warning("%s has no address for %s; %s not sent there",
                                    user["name"], destination, described.get("msg_id"))
                        continue
                    notification = self.renderer.render(
                        destination, described, envelope, user, list(rules), address,
                        shared=shared)
                    state = self.first_state(user, destination)
                    notifications.append((notification, state))
                    if state == "sent":
                        result.sent_at_once[destination] = \
                            result.sent_at_once.get(destination, 0) + 1
                    result.per_destination[destination] = \
                        result.per_destination.get(destination, 0) + 1
        result.new_messages, result.notifications, result.claimed = \
            self.outbox.record_and_claim(envelopes, notifications, claim)
        return result
