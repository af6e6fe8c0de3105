"""From bus messages to outbox rows: describe, match, render, record.

A batch goes through in two steps. :meth:`Pipeline.prepare` describes,
matches and renders each message on its own: one that fails at a stage is
rejected alone (a :class:`Rejection` naming the stage), and the others go
on. :meth:`Pipeline.record` then writes the batch in one transaction
(history, outbox and inbox together), so the outbox keeps up with the bus and a
crash loses nothing that reached the history. A feed's notifications are
delivered there too: storing the item is all their delivery is, so it is
written with the row, which is recorded ``sent`` (digests of the feed go
through its backend when they are due). When the database refuses
the data, the batch is written in halves, down to the message it refuses,
which alone is rejected. When the database cannot be used at all
(:class:`~notifier.errors.StorageUnavailableError`) nothing is rejected: the
error goes to the caller, which keeps the batch and tries again.

A user record that is bad in the database affects only that user (see
:mod:`.settings`); a destination that no backend delivers (``irc`` without
``[irc] host``) gets its rows recorded ``dead``, saying what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import Config
from ..errors import NotifierError, StorageError, StorageUnavailableError
from ..notification import Notification
from ..storage.feeds import NewFeedItem
from ..storage.outbox import Outbox, OutboxRow
from .inboxrows import inbox_entry
from .settings import Problems, address_for, digest_settings, held_for_quiet

log = logging.getLogger(__name__)

#: what is missing when no backend delivers a destination, for its dead rows
MISSING_BACKEND = {"irc": "no [irc] host configured", "desktop": "no [dbus] user configured",
                   "webpush": "no [webpush] contact configured",
                   "matrix": "no [matrix] homeserver configured"}

#: one notification to record: it, its first state, and the error a dead one carries
Entry = tuple[Notification, str, str | None]


class Describes(Protocol):
    def describe(self, message: dict[str, Any]) -> dict[str, Any]: ...


class Matches(Protocol):
    def match(self, record: Mapping[str, Any], explain: bool = False) -> list[Any]: ...


class Renders(Protocol):
    def render(self, destination: str, described: dict[str, Any], envelope: dict[str, Any],
               user: dict[str, Any], rules: list[str], address: str,
               shared: dict[str, Any] | None = None) -> Notification: ...


@dataclass(frozen=True)
class Rejection:
    """Message ``index`` of a batch was rejected at ``reason`` (the stage), with ``detail``."""

    index: int
    reason: str
    detail: str
    #: the exception, when it was not one of ours: its traceback is worth logging
    error: BaseException | None = None


@dataclass
class Prepared:
    """A batch described, matched and rendered: what :meth:`Pipeline.record` writes."""

    envelopes: list[dict[str, Any]]
    #: per message: its notifications, or None when it was rejected
    entries: list[list[Entry] | None] = field(default_factory=list)
    #: per message: its described record (indexed with it), or None when it was rejected
    described: list[dict[str, Any] | None] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    matched: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    #: per message: its inbox rows, one per recipient (empty when it was rejected)
    inbox: list[list[dict[str, Any]]] = field(default_factory=list)
    #: per message: the feed items its notifications store as they are recorded
    feeds: list[list[NewFeedItem]] = field(default_factory=list)


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
    #: messages rejected alone, at a stage or by the database
    rejected: list[Rejection] = field(default_factory=list)
    #: rows recorded dead at once because no backend delivers their destination
    dead: dict[str, int] = field(default_factory=dict)
    #: notifications recorded already sent (the live stream's), by destination
    sent_at_once: dict[str, int] = field(default_factory=dict)


class _Failed(Exception):
    """One message failed at ``stage``."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(stage)
        self.stage = stage
        self.error = error


def _count(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def _detail(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, NotifierError) else f"{type(exc).__name__}: {exc}"
    return text[:2000]


class Pipeline:
    """Turns batches of envelopes into history and outbox rows.

    ``delivered`` names the destinations some backend delivers (None: all of
    them); rows for any other are recorded dead. ``clock`` tells the time quiet hours
    are read against (the outbox's clock unless given).
    """

    def __init__(self, config: Config, outbox: Outbox, describer: Describes,
                 matcher: Matches, renderer: Renders,
                 users: Callable[[str], dict[str, Any] | None],
                 delivered: Iterable[str] | None = None,
                 clock: Callable[[], float] | None = None):
        self.config = config
        self.outbox = outbox
        #: the time quiet hours are read against (the outbox's, unless given)
        self.clock = clock
        self.describer = describer
        self.matcher = matcher
        self.renderer = renderer
        self.users = users
        self.delivered = None if delivered is None else frozenset(delivered)
        self.problems = Problems()
        self._told_dead: set[str] = set()

    # -- where notifications go ----------------------------------------------

    def first_state(self, user: Mapping[str, Any], destination: str,
                    severity: str = "info") -> str:
        """``held`` for a digest or quiet hours, ``sent`` for what the live stream alone
        delivers, else pending."""
        if destination == "desktop" and user["name"] != self.config.dbus.user:
            return "sent"  # reaches the user through /users/<user>/stream
        report = self.problems.for_user(user["name"])
        if digest_settings(user, destination, report):
            return "held"
        now = (self.clock or self.outbox.clock)()
        if held_for_quiet(user, destination, severity, now, report):
            return "held"  # sent in one digest when the quiet hours end (see .digests)
        return "pending"

    def missing_backend(self, destination: str) -> str | None:
        """What is missing for ``destination`` to be delivered, or None when it is."""
        if self.delivered is None or destination in self.delivered:
            return None
        return MISSING_BACKEND.get(destination, f"no backend delivers {destination}")

    def warn_undelivered(self, rules: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """Log a warning for each destination enabled ``rules`` use that nothing delivers.

        Desktop notifications are delivered by being stored (the live stream),
        so they never count. Returns ``{destination: what is missing}``.
        """
        users: dict[str, set[str]] = {}
        for rule in rules:
            if rule.get("disabled"):
                continue
            for destination in rule.get("destinations") or ():
                if destination != "desktop" and self.missing_backend(destination):
                    users.setdefault(destination, set()).add(str(rule.get("user")))
        missing = {}
        for destination, names in sorted(users.items()):
            missing[destination] = why = self.missing_backend(destination) or ""
            shown = ", ".join(sorted(names)[:3]) + (" and others" if len(names) > 3 else "")
            log.warning("rules of %s send to %s, but %s: those notifications are recorded "
                        "dead ('notifier outbox list --dead' lists them)", shown, destination,
                        why)
        return missing

    # -- a batch ---------------------------------------------------------------

    def process(self, envelopes: list[dict[str, Any]], claim: Container[str] = ()
                ) -> BatchResult:
        """:meth:`prepare` then :meth:`record`."""
        return self.record(self.prepare(envelopes), claim)

    def prepare(self, envelopes: list[dict[str, Any]]) -> Prepared:
        """Describe, match and render each message; a failure rejects that message alone.

        Raises :class:`StorageUnavailableError` (looking a user up, say): nothing
        about the batch is known to be wrong, so it is for the caller to try again.
        """
        prepared = Prepared(envelopes)
        for index, envelope in enumerate(envelopes):
            prepared.described.append(None)
            inbox: list[dict[str, Any]] = []
            feeds: list[NewFeedItem] = []
            try:
                entries = self._prepare_one(envelope, prepared, inbox, feeds)
            except _Failed as failed:
                error = failed.error
                prepared.rejected.append(Rejection(
                    index, failed.stage, _detail(error),
                    None if isinstance(error, NotifierError) else error))
                prepared.entries.append(None)
                prepared.inbox.append([])
                prepared.feeds.append([])
            else:
                prepared.entries.append(entries)
                prepared.inbox.append(inbox)
                prepared.feeds.append(feeds)
        return prepared

    def _prepare_one(self, envelope: dict[str, Any], prepared: Prepared,
                     inbox: list[dict[str, Any]], feeds: list[NewFeedItem]) -> list[Entry]:
        """The message's notifications; its inbox rows go into ``inbox``, its feed items
        into ``feeds``."""
        stage = "describe"
        try:
            described = self.describer.describe(envelope)
            prepared.described[-1] = described
            stage = "match"
            # Explained: the inbox keeps why each rule matched (see .inboxrows).
            recipients = self.matcher.match(described, explain=True)
        except StorageUnavailableError:
            raise
        except Exception as exc:  # one message's failure, whatever it is, costs only it
            raise _Failed(stage, exc) from exc
        if recipients:
            prepared.matched += 1
        entries: list[Entry] = []
        failures: list[BaseException] = []
        shared: dict[str, Any] = {}  # what renders the same for every recipient
        for name, rules, destinations, why in recipients:
            report = self.problems.for_user(name)
            user = self._user(name, report)
            if user is None:
                _count(prepared.skipped, "unknown-user")
                continue
            try:
                inbox.append(inbox_entry(name, described, envelope, rules, why))
            except Exception as exc:  # the message's fault: as a failure to render it
                raise _Failed("render", exc) from exc
            for destination in destinations:
                address = address_for(user, destination, report)
                if not address:
                    _count(prepared.skipped, "no-address")
                    report(f"no address for {destination}; nothing is sent there")
                    continue
                try:
                    notification = self.renderer.render(
                        destination, described, envelope, user, list(rules), address,
                        shared=shared)
                except StorageUnavailableError:
                    raise
                except Exception as exc:  # the message's fault, or this recipient's: see below
                    failures.append(exc)
                    report(f"rendering for {destination} failed: {_detail(exc)}")
                    continue
                entries.append(self._entry(notification, user, destination, feeds))
        if failures and not entries:
            raise _Failed("render", failures[0]) from failures[0]
        if failures:
            _count(prepared.skipped, "render-failed", len(failures))
        return entries

    def _user(self, name: str, report: Callable[[str], None]) -> dict[str, Any] | None:
        try:
            user = self.users(name)
        except StorageUnavailableError:
            raise
        except Exception as exc:  # a record that cannot even be read costs only its user
            report(f"cannot be read: {_detail(exc)}")
            return None
        if user is None:
            report("rules match, but there is no such user")
        elif not isinstance(user.get("name"), str):
            report("the record has no name")
            return None
        return user

    def _entry(self, notification: Notification, user: Mapping[str, Any],
               destination: str, feeds: list[NewFeedItem]) -> Entry:
        state = self.first_state(user, destination, notification.severity)
        if state == "sent":
            return notification, state, None
        if state == "pending" and destination == "rss":
            # Delivering to a feed is storing the item: done in the transaction that
            # records the row, which is recorded sent. What is held (a digest) goes
            # through the feed backend when it is due.
            item = NewFeedItem.of(notification)
            if item is not None:
                feeds.append(item)
                return notification, "sent", None
        missing = self.missing_backend(destination)
        if missing is None:
            return notification, state, None
        if destination not in self._told_dead:
            self._told_dead.add(destination)
            log.warning("%s: %s; its notifications are recorded dead", destination, missing)
        return notification, "dead", missing

    # -- recording -------------------------------------------------------------

    def record(self, prepared: Prepared, claim: Container[str] | Mapping[str, int] = ()
               ) -> BatchResult:
        """Write what :meth:`prepare` made; the messages the database refuses are rejected.

        New pending notifications of the destinations in ``claim`` (a mapping:
        at most that many each) are recorded claimed and come back in
        :attr:`BatchResult.claimed`, for the caller's workers.
        """
        result = BatchResult(messages=len(prepared.envelopes), matched=prepared.matched,
                             skipped=dict(prepared.skipped), rejected=list(prepared.rejected))
        room: Container[str] | dict[str, int] = \
            dict(claim) if isinstance(claim, Mapping) else claim
        part = [i for i, entries in enumerate(prepared.entries) if entries is not None]
        if part:
            self._record(prepared, part, room, result)
        result.claimed.sort(key=lambda row: row.id)
        result.rejected.sort(key=lambda r: r.index)
        return result

    def _record(self, prepared: Prepared, part: list[int],
                room: Container[str] | dict[str, int], result: BatchResult) -> None:
        entries = [entry for i in part for entry in prepared.entries[i] or ()]
        inbox = [row for i in part for row in prepared.inbox[i]] if prepared.inbox else []
        feeds = [item for i in part for item in prepared.feeds[i]] if prepared.feeds else []
        try:
            new_messages, new_notifications, claimed = self.outbox.record_and_claim(
                [prepared.envelopes[i] for i in part], entries, room, inbox=inbox,
                described=[prepared.described[i] if i < len(prepared.described) else None
                           for i in part], feeds=feeds,
                feed_keep=self.config.delivery.feed_items)
        except StorageUnavailableError:
            raise
        except StorageError as exc:
            if len(part) == 1:
                result.rejected.append(Rejection(part[0], "record", _detail(exc)))
                return
            # Refused data: find the message(s) at fault, halving.
            middle = len(part) // 2
            self._record(prepared, part[:middle], room, result)
            self._record(prepared, part[middle:], room, result)
            return
        result.new_messages += new_messages
        result.notifications += new_notifications
        result.claimed += claimed
        if isinstance(room, dict):
            for row in claimed:
                room[row.destination] = room.get(row.destination, 0) - 1
        for notification, state, _error in entries:
            if state == "dead":
                _count(result.dead, notification.destination)
            else:
                _count(result.per_destination, notification.destination)
                if state == "sent":
                    _count(result.sent_at_once, notification.destination)
