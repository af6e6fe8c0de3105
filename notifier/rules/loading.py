"""Loading the matcher at start: from the stored snapshot when it is current, else every rule.

A snapshot (:mod:`.snapshot`, kept by :mod:`notifier.storage.rulesnapshot`)
is used only when its format is this version's, it was made with the same
destination names (a destination whose backend is gone makes rules
invalid), its checksum matches, and the change log still holds the entry it
was made at, unchanged. The changes after that entry are then applied, as
the running service applies them. Anything else is logged and the rules are
loaded in full, as before the snapshot existed; a full load writes a fresh
snapshot for the next start.

``NOTIFIER_RULES_SNAPSHOT=off`` in the environment turns snapshots off
(neither read nor written), to compare or to rule them out.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import RuleError, StorageError
from .snapshot import FORMAT, SnapshotError, decode, digest, encode
from .validation import parse_rule

if TYPE_CHECKING:
    from ..storage import Store
    from .matcher import Matcher

log = logging.getLogger(__name__)

ENV = "NOTIFIER_RULES_SNAPSHOT"
#: changes replayed over a snapshot at start after which a fresh snapshot is written
REFRESH_AFTER = 1000
_PAGE = 10000


def enabled(store: Any) -> bool:
    """Whether snapshots are used with ``store`` (a real store, not turned off)."""
    from ..storage import Store

    off = os.environ.get(ENV, "on").strip().lower() in ("off", "0", "no", "false")
    return not off and isinstance(store, Store)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a few million objects that form no cycle are made.

    Each collection would walk every object made so far: the load took about
    twice as long with it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _names(destinations: Collection[str]) -> str:
    return ",".join(sorted(set(destinations)))


def from_snapshot(cls: type[Matcher], store: Store, destinations: Collection[str],
                  on_invalid: Callable[[str], None] | None) -> Matcher | None:
    """The matcher from the stored snapshot brought up to date, or None (logged) to load all."""
    from ..storage import rulesnapshot

    t0 = time.monotonic()
    try:
        stored = rulesnapshot.read(store)
    except StorageError as exc:
        log.warning("rules snapshot not read (%s): loading every rule", exc)
        return None
    if stored is None:
        log.info("no rules snapshot yet: loading every rule")
        return None
    why = None
    if stored.format != FORMAT:
        why = f"format {stored.format}, this version reads {FORMAT}"
    elif stored.destinations != _names(destinations):
        why = (f"made with destinations {stored.destinations or '(none)'}, "
               f"now {_names(destinations) or '(none)'}")
    else:
        why = rulesnapshot.is_current(store, stored.change_seq, stored.change_mark)
    if why is None:
        try:
            with _collector_paused():
                rules, owners = decode(stored.data, stored.digest)
                matcher = cls(rules, owners)
                del rules
        except (SnapshotError, RuleError) as exc:
            why = str(exc)
    if why is not None:
        log.warning("rules snapshot not used (%s): loading every rule", why)
        return None
    matcher.position = stored.change_seq
    replayed = catch_up(matcher, store, destinations, on_invalid)
    log.info("loaded %d rules from the snapshot of change %d, then %d later change(s), "
             "in %.1f s", len(matcher.index), stored.change_seq, replayed,
             time.monotonic() - t0)
    if replayed >= REFRESH_AFTER:
        save(store, matcher, destinations)
    return matcher


def catch_up(matcher: Matcher, store: Store, destinations: Collection[str],
             on_invalid: Callable[[str], None] | None) -> int:
    """Apply the rule and owner changes after ``matcher.position``; how many there were.

    A stored rule that no longer validates is left out and reported as a full
    load reports it (``on_invalid``, else :class:`RuleError` for all of them).
    """
    problems: list[str] = []
    count = 0
    names = list(destinations)
    while True:
        rows = store.changes_after(matcher.position or 0, _PAGE)
        for row in rows:
            try:
                apply_change(matcher, store, row, names)
            except RuleError as exc:
                if on_invalid is not None:
                    on_invalid(str(exc))
                else:
                    problems.append(str(exc))
            matcher.position = row.seq
        count += len(rows)
        if len(rows) < _PAGE:
            break
    if problems:
        raise RuleError(f"{len(problems)} stored rule(s) are invalid:\n" + "\n".join(problems))
    return count


def apply_change(matcher: Matcher, store: Any, row: Any, destinations: Collection[str]) -> None:
    """Apply one change-log entry about a rule or an owner (other kinds are not the matcher's).

    A stored rule that does not validate is removed from the matcher and the
    :class:`RuleError` raised.
    """
    if row.kind == "rule":
        user, name = row.key1, row.key2
        document = store.get_rule(user, name) if row.op == "upsert" else None
        if document is None:
            matcher.remove_rule(user, name)
            return
        try:
            rule = parse_rule(document, source=f"database, user {user!r}",
                              destinations=destinations, ignore_unknown=True)
        except RuleError:
            matcher.remove_rule(user, name)
            raise
        matcher.replace_rule(rule)
    elif row.kind == "owner":
        if row.op == "add":
            matcher.add_owner(row.key1, row.key2, row.key3)
        else:
            matcher.remove_owner(row.key1, row.key2, row.key3)


def save(store: Store, matcher: Matcher, destinations: Collection[str],
         seq: int | None = None) -> int | None:
    """Store the matcher as the snapshot at change ``seq`` (default ``matcher.position``).

    Returns the position, or None. Best effort: a failure is logged, and the
    next start loads every rule.
    """
    from ..storage import rulesnapshot

    seq = matcher.position if seq is None else seq
    if seq is None:
        return None
    t0 = time.monotonic()
    try:
        mark = rulesnapshot.mark_of(store, seq) if seq else None
        if seq and mark is None:
            log.info("rules snapshot not written: change %d has been pruned", seq)
            return None
        rules, user_owners, group_owners = matcher.export()
        data = encode(rules, user_owners, group_owners)
        rulesnapshot.write(store, rulesnapshot.StoredSnapshot(
            FORMAT, seq, mark, _names(destinations), len(rules), digest(data), time.time(),
            data))
    except StorageError as exc:
        log.warning("rules snapshot not written: %s", exc)
        return None
    log.info("wrote the rules snapshot of change %d: %d rules, %.1f MB, in %.1f s", seq,
             len(rules), len(data) / 2**20, time.monotonic() - t0)
    return seq


def refresh(store: Any, matcher: Any, destinations: Collection[str], seq: int) -> int | None:
    """Write a fresh snapshot if the stored one is older than ``seq``; its position.

    For the running service, whose ``matcher`` reflects the change log up to
    ``seq``, before it prunes the log: the entry the snapshot was made at
    must be kept. None when there is no snapshot to keep.
    """
    from ..storage import rulesnapshot

    if not enabled(store) or not hasattr(matcher, "export"):
        return None
    try:
        kept = rulesnapshot.kept_seq(store)
    except StorageError as exc:
        log.warning("rules snapshot not refreshed: %s", exc)
        return None
    if kept is None or kept < seq:
        return save(store, matcher, destinations, seq) or kept
    return kept
