"""The :class:`Store`: everything notifier keeps in its database.

One ``Store`` wraps one SQLAlchemy engine and is safe to share between
threads: each call takes a connection from the pool for its own
transaction. Every write happens in a single transaction, so a call either
applies fully or not at all; each change to users, owners or rules is also
appended to the change log (table ``changes``) in that transaction, for a
running ``notifier serve`` to follow. Database errors come out as
:class:`~notifier.errors.StorageError` naming the database URL (without its
password); :class:`~notifier.errors.StorageUnavailableError` when the
database cannot be used now (down, disconnected, locked, read-only, full,
not migrated), as opposed to refusing the data written.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from ..bus.envelope import message_id
from ..errors import InputError, StorageError, StorageUnavailableError
from ..users.ownership import check_packages, ownership_pairs
from ..users.records import LIST_FIELDS, check_user_records
from . import migrate, terms
from .engine import WRITE_OPTION, insert_ignoring, is_memory, open_engine, redact
from .history import glob_to_like, message_time, topic_matches
from .schema import changes as change_log
from .schema import messages, owners, profile_cache, users
from .schema import rules as rules_table
from .writelock import write_lock_for

if TYPE_CHECKING:
    from ..config import Config

#: rows per statement for large IN lists and bulk inserts
_CHUNK = 500
#: messages read per query by :meth:`Store.message_rows`
_PAGE = 1000


class StoredMessage(NamedTuple):
    """One message from the history, with the columns it is filtered by."""

    msg_id: str
    topic: str
    timestamp: float
    envelope: dict[str, Any]


@dataclass(frozen=True)
class OwnershipDelta:
    """What :meth:`Store.apply_ownership` changed: ``(package, kind, name)`` triples."""

    added: list[tuple[str, str, str]] = field(default_factory=list)
    removed: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class UserImport:
    """How many records :meth:`Store.import_users` created, changed or left as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used now, rather than that it refused data.

    Refused data is a constraint (IntegrityError), a value the database
    cannot hold (DataError), or one that could not even be sent (a
    statement error that is not the database's). Every other error from the
    database (connection lost or refused, locked, read-only, full, a table
    missing) is not the data's fault, and worth retrying.
    """
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or not isinstance(exc, DataError | IntegrityError)
    return False


class Store:
    """notifier's database: users, package owners, rules, message history.

    ``Store(url)`` opens the database and, with ``create`` (the default),
    creates it on first use: the directory of a SQLite file, then the schema
    (migrated to the newest revision). With ``create=False`` nothing is
    created or migrated; see :meth:`upgrade`.
    """

    def __init__(self, url: str, *, create: bool = True,
                 clock: Callable[[], float] = time.time):
        self.url = url
        #: the URL as shown in messages: without its password
        self.display_url = redact(url)
        self._clock = clock
        self.engine = open_engine(url, create_dirs=create)
        self.dialect = self.engine.dialect.name
        #: a private in-memory SQLite database, which no other process can open
        self.in_memory = is_memory(self.engine.url)
        #: held around every write transaction (see :mod:`notifier.storage.writelock`)
        self.write_lock = write_lock_for(self.engine.url)
        #: the history's vocabulary this process wrote lately (see :mod:`.terms`)
        self.recent_terms = terms.RecentTerms()
        if create:
            self.upgrade()

    @classmethod
    def from_config(cls, config: Config, *, create: bool = True) -> Store:
        """The store ``config`` names: ``database_url``, by default a SQLite file."""
        return cls(config.resolved_database_url(), create=create)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.write_lock.close()

    # -- plumbing ---------------------------------------------------------

    def _error(self, action: str, exc: BaseException) -> StorageError:
        detail = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [repr(exc)])[0]
        hint = ""
        lowered = detail.lower()
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            hint = " (is the schema up to date? run 'notifier db upgrade')"
        cls = StorageUnavailableError if _unavailable(exc) else StorageError
        return cls(f"{self.display_url}: cannot {action}: {detail}{hint}")

    @contextmanager
    def _transaction(self, action: str, *, write: bool = True) -> Iterator[Connection]:
        try:
            if not write:
                with self.engine.connect() as conn, conn.begin():
                    yield conn
                return
            with self.write_lock, self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise self._error(action, exc) from exc
        except UnicodeEncodeError as exc:  # text the database's encoding cannot hold
            raise self._error(action, exc) from exc

    def _log_changes(self, conn: Connection, entries: list[tuple[str | None, ...]]) -> None:
        """Append ``(kind, op, key1, key2, key3)`` entries to the change log.

        The log (table ``changes``) lets a running ``notifier serve`` pick up
        what other processes changed; see :mod:`notifier.service.changes`.
        """
        now = self._clock()
        for chunk in _chunks(entries, 2000):
            conn.execute(change_log.insert(), [
                {"kind": kind, "op": op, "key1": key1, "key2": key2, "key3": key3, "at": now}
                for kind, op, key1, key2, key3 in chunk])

    def last_change(self) -> int:
        """The sequence number of the newest change-log entry (0 when there is none)."""
        with self._transaction("read the change log", write=False) as conn:
            return conn.execute(select(func.max(change_log.c.seq))).scalar() or 0

    def changes_after(self, seq: int, limit: int = 10000) -> list[Any]:
        """Change-log entries after ``seq``, oldest first: ``seq, kind, op, key1, key2, key3``."""
        with self._transaction("read the change log", write=False) as conn:
            return conn.execute(select(change_log).where(change_log.c.seq > seq)
                                .order_by(change_log.c.seq).limit(limit)).all()

    def prune_changes(self, upto: int, older_than: float) -> int:
        """Delete change-log entries up to ``upto`` made more than ``older_than`` s ago.

        The newest entry always stays: on SQLite, numbering goes on from the highest
        number left, and with none left it would start again at 1, below what every
        running watcher has seen (they would miss the changes until it caught up).
        """
        cutoff = self._clock() - older_than
        with self._transaction("prune the change log") as conn:
            newest = conn.scalar(select(func.max(change_log.c.seq)))
            if newest is None:
                return 0
            return conn.execute(delete(change_log).where(
                change_log.c.seq <= min(upto, newest - 1), change_log.c.at < cutoff)).rowcount

    # -- schema -----------------------------------------------------------

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision (Alembic ``upgrade head``)."""
        try:
            with self._transaction("migrate the schema") as conn:
                migrate.upgrade(conn)
        except migrate.MigrationFailed as exc:
            raise StorageError(f"{self.display_url}: cannot migrate the schema: {exc}") from exc

    def revision(self) -> str | None:
        """The schema revision the database is at; None when it has no schema yet."""
        with self._transaction("read the schema revision", write=False) as conn:
            return migrate.current_revision(conn)

    # -- users ------------------------------------------------------------

    @staticmethod
    def _user(row: Any) -> dict[str, Any]:
        # A list is copied; anything else (a record edited by hand) is returned as stored,
        # for the reader to refuse: list() would turn "a@b" into ["a", "@", "b"].
        return {"name": row.name, "emails": _copy(row.emails), "ircnicks": _copy(row.ircnicks),
                "groups": _copy(row.groups), "delivery": row.delivery,
                "feed_token": row.feed_token}

    def import_users(self, records: list[dict[str, Any]], source: str = "<records>"
                     ) -> UserImport:
        """Create or update users by name, all in one transaction.

        Each record is checked first (:func:`notifier.users.records.check_user_records`);
        one bad record raises :class:`InputError` and nothing is written. A key
        a record leaves out keeps its stored value (for a new user: empty lists
        and no delivery settings). New users get a fresh ``feed_token``;
        existing ones keep theirs.
        """
        checked = check_user_records(records, source)
        now = self._clock()
        created = updated = unchanged = 0
        with self._transaction("import users") as conn:
            existing: dict[str, Any] = {}
            for names in _chunks([r["name"] for r in checked]):
                for row in conn.execute(select(users).where(users.c.name.in_(names))):
                    existing[row.name] = row
            inserts = []
            logged: list[tuple[str | None, ...]] = []
            for rec in checked:
                row = existing.get(rec["name"])
                if row is None:
                    inserts.append({
                        "name": rec["name"],
                        **{key: rec.get(key, []) for key in LIST_FIELDS},
                        "delivery": rec.get("delivery"),
                        "feed_token": secrets.token_urlsafe(32),
                        "created_at": now, "updated_at": now})
                    continue
                changed = {key: value for key, value in rec.items()
                           if key != "name" and getattr(row, key) != value}
                if not changed:
                    unchanged += 1
                    continue
                conn.execute(update(users).where(users.c.id == row.id)
                             .values(**changed, updated_at=now))
                updated += 1
                logged.append(("user", "upsert", rec["name"], None, None))
            for chunk in _chunks(inserts):
                conn.execute(users.insert(), chunk)
            created = len(inserts)
            logged.extend(("user", "upsert", r["name"], None, None) for r in inserts)
            self._log_changes(conn, logged)
        return UserImport(created, updated, unchanged)

    def upsert_users(self, records: list[dict[str, Any]]) -> int:
        """Create or update users (see :meth:`import_users`); return how many changed."""
        result = self.import_users(records)
        return result.created + result.updated

    def add_user(self, record: dict[str, Any]) -> dict[str, Any]:
        """Create one user; :class:`InputError` if the name is taken. Returns the stored user."""
        (rec,) = check_user_records([record], "<new user>")
        now = self._clock()
        with self._transaction(f"add user {rec['name']!r}") as conn:
            taken = conn.execute(select(users.c.id).where(users.c.name == rec["name"])).first()
            if taken is not None:
                raise InputError(f"user {rec['name']!r} already exists")
            conn.execute(users.insert().values(
                name=rec["name"], **{key: rec.get(key, []) for key in LIST_FIELDS},
                delivery=rec.get("delivery"), feed_token=secrets.token_urlsafe(32),
                created_at=now, updated_at=now))
            row = conn.execute(select(users).where(users.c.name == rec["name"])).one()
            self._log_changes(conn, [("user", "upsert", rec["name"], None, None)])
        return self._user(row)

    def get_user(self, name: str) -> dict[str, Any] | None:
        """The stored user ``name`` (with ``feed_token`` and ``delivery``), or None."""
        with self._transaction(f"read user {name!r}", write=False) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else self._user(row)

    def get_user_by_feed_token(self, token: str) -> dict[str, Any] | None:
        """The user whose ``feed_token`` is ``token``, or None."""
        with self._transaction("read a user by feed token", write=False) as conn:
            row = conn.execute(select(users).where(users.c.feed_token == token)).first()
        return None if row is None else self._user(row)

    def list_users(self) -> list[dict[str, Any]]:
        """Every stored user, by name."""
        with self._transaction("list users", write=False) as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [self._user(row) for row in rows]

    def remove_user(self, name: str) -> bool:
        """Delete the user ``name``; False if there was none.

        Rules are kept: they belong to the name, which may also be a FASJSON user.
        """
        with self._transaction(f"remove user {name!r}") as conn:
            if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
                return False
            self._log_changes(conn, [("user", "delete", name, None, None)])
        return True

    # -- profile cache (notifier.users) -------------------------------------

    def cached_profile(self, name: str) -> tuple[dict[str, Any] | None, float] | None:
        """``(profile, fetched_at)`` cached for ``name``, or None if nothing is cached.

        A cached ``profile`` of None records that the directory had no such user.
        """
        with self._transaction(f"read the cached profile of {name!r}", write=False) as conn:
            row = conn.execute(select(profile_cache.c.profile, profile_cache.c.fetched_at)
                               .where(profile_cache.c.name == name)).first()
        return None if row is None else (row.profile, row.fetched_at)

    def cache_profile(self, name: str, profile: dict[str, Any] | None,
                      fetched_at: float) -> None:
        """Remember ``profile`` (None: no such user) for ``name`` as of ``fetched_at``."""
        with self._transaction(f"cache the profile of {name!r}") as conn:
            conn.execute(delete(profile_cache).where(profile_cache.c.name == name))
            conn.execute(profile_cache.insert().values(name=name, profile=profile,
                                                       fetched_at=fetched_at))

    def clear_profile_cache(self) -> int:
        """Forget every cached profile; return how many there were."""
        with self._transaction("clear the profile cache") as conn:
            return conn.execute(delete(profile_cache)).rowcount

    # -- ownership ----------------------------------------------------------

    def apply_ownership(self, packages: dict[str, Any], replace: bool = False, *,
                        dry_run: bool = False) -> OwnershipDelta:
        """Make the stored owners of the given packages what ``packages`` says.

        ``packages`` maps a package, or any artifact by its key
        (:mod:`notifier.users.artifacts`), to ``{"users": [...], "groups": [...]}``.
        Only the difference is written: owners stored but no longer listed are
        removed, new ones added. Packages not in ``packages`` keep their owners,
        unless ``replace`` is true, in which case they lose them all. Returns
        the delta, sorted. With ``dry_run`` nothing is written.
        """
        checked = check_packages(packages)  # by artifact key: "rpms/x" is "x"
        wanted = ownership_pairs(checked)
        with self._transaction("update package owners") as conn:
            stored = {tuple(row) for row in conn.execute(
                select(owners.c.package, owners.c.kind, owners.c.name))}
            if not replace:
                stored = {pair for pair in stored if pair[0] in checked}
            added = sorted(wanted - stored)
            removed = sorted(stored - wanted)
            if dry_run:
                return OwnershipDelta(added, removed)
            for chunk in _chunks(removed):
                conn.execute(delete(owners).where(
                    tuple_(owners.c.package, owners.c.kind, owners.c.name).in_(chunk)))
            for chunk in _chunks(added):
                conn.execute(owners.insert(), [
                    {"package": p, "kind": k, "name": n} for p, k, n in chunk])
            self._log_changes(conn, [("owner", "remove", *pair) for pair in removed]
                              + [("owner", "add", *pair) for pair in added])
        return OwnershipDelta(added, removed)

    def ownership(self) -> Iterator[tuple[str, str, str]]:
        """Every ``(package, kind, name)``, kind being ``user`` or ``group``, sorted."""
        with self._transaction("read package owners", write=False) as conn:
            rows = conn.execute(select(owners.c.package, owners.c.kind, owners.c.name)
                                .order_by(owners.c.package, owners.c.kind, owners.c.name)).all()
        return iter([tuple(row) for row in rows])

    def package_owners(self, package: str) -> dict[str, list[str]]:
        """``{"users": [...], "groups": [...]}`` owning ``package`` (empty lists if none)."""
        out: dict[str, list[str]] = {"users": [], "groups": []}
        with self._transaction(f"read the owners of {package!r}", write=False) as conn:
            for row in conn.execute(select(owners.c.kind, owners.c.name)
                                    .where(owners.c.package == package)
                                    .order_by(owners.c.kind, owners.c.name)):
                out[f"{row.kind}s"].append(row.name)
        return out

    def owned_packages(self, user: str | None = None, groups: Iterable[str] = ()) -> set[str]:
        """Packages owned by ``user`` directly or by any of ``groups``."""
        groups = list(groups)
        conditions = []
        if user is not None:
            conditions.append(and_(owners.c.kind == "user", owners.c.name == user))
        if groups:
            conditions.append(and_(owners.c.kind == "group", owners.c.name.in_(groups)))
        if not conditions:
            return set()
        with self._transaction("read owned packages", write=False) as conn:
            return set(conn.scalars(select(owners.c.package).where(or_(*conditions))))

    # -- rules ----------------------------------------------------------------

    @staticmethod
    def _rule(row: Any) -> dict[str, Any]:
        return {**row.document, "user": row.username, "name": row.name,
                "disabled": bool(row.disabled)}

    def upsert_rules(self, rules: list[dict[str, Any]]) -> int:
        """Store rules, already validated, keyed by their ``user`` and ``name``.

        The whole document is kept; ``disabled`` (default false) is also a
        column. An existing rule is replaced. Returns how many rules were
        created or changed.
        """
        keyed: dict[tuple[str, str], dict[str, Any]] = {}
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise InputError(f"rule {index}: must be an object, not {type(rule).__name__}")
            for key in ("user", "name"):
                if not isinstance(rule.get(key), str) or not rule[key]:
                    raise InputError(f"rule {index}: '{key}' must be a non-empty string")
            keyed[(rule["user"], rule["name"])] = rule
        now = self._clock()
        written = 0
        logged: list[tuple[str | None, ...]] = []
        with self._transaction("store rules") as conn:
            existing: dict[tuple[str, str], Any] = {}
            for chunk in _chunks(sorted({user for user, _ in keyed})):
                query = select(rules_table).where(rules_table.c.username.in_(chunk))
                for row in conn.execute(query):
                    existing[(row.username, row.name)] = row
            for (user, name), rule in keyed.items():
                disabled = bool(rule.get("disabled", False))
                row = existing.get((user, name))
                if row is None:
                    conn.execute(rules_table.insert().values(
                        username=user, name=name, disabled=disabled, document=rule,
                        created_at=now, updated_at=now))
                elif row.document != rule or bool(row.disabled) != disabled:
                    conn.execute(update(rules_table).where(rules_table.c.id == row.id).values(
                        disabled=disabled, document=rule, updated_at=now))
                else:
                    continue
                written += 1
                logged.append(("rule", "upsert", user, name, None))
            self._log_changes(conn, logged)
        return written

    def list_rules(self, user: str | None = None) -> list[dict[str, Any]]:
        """Stored rules (of ``user``, or everyone's), by user then name."""
        query = select(rules_table).order_by(rules_table.c.username, rules_table.c.name)
        if user is not None:
            query = query.where(rules_table.c.username == user)
        with self._transaction("list rules", write=False) as conn:
            return [self._rule(row) for row in conn.execute(query)]

    @staticmethod
    def _rule_key(user: str, name: str) -> Any:
        return and_(rules_table.c.username == user, rules_table.c.name == name)

    def get_rule(self, user: str, name: str) -> dict[str, Any] | None:
        """The rule ``name`` of ``user``, or None."""
        with self._transaction(f"read rule {name!r} of {user!r}", write=False) as conn:
            row = conn.execute(select(rules_table).where(self._rule_key(user, name))).first()
        return None if row is None else self._rule(row)

    def remove_rule(self, user: str, name: str) -> bool:
        """Delete the rule ``name`` of ``user``; False if there was none."""
        with self._transaction(f"remove rule {name!r} of {user!r}") as conn:
            if conn.execute(delete(rules_table).where(self._rule_key(user, name))).rowcount == 0:
                return False
            self._log_changes(conn, [("rule", "delete", user, name, None)])
        return True

    def set_rule_disabled(self, user: str, name: str, disabled: bool) -> bool:
        """Disable or enable a rule; False if there is no such rule."""
        with self._transaction(f"update rule {name!r} of {user!r}") as conn:
            row = conn.execute(select(rules_table).where(self._rule_key(user, name))).first()
            if row is None:
                return False
            conn.execute(update(rules_table).where(rules_table.c.id == row.id).values(
                disabled=disabled, document={**row.document, "disabled": disabled},
                updated_at=self._clock()))
            self._log_changes(conn, [("rule", "upsert", user, name, None)])
        return True

    # -- message history --------------------------------------------------------

    def store_messages(self, envelopes: list[dict[str, Any]],
                       describe: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                       ) -> int:
        """Add messages to the history; return how many were new.

        The key is ``msg_id`` (see :func:`notifier.bus.envelope.message_id`);
        a message already stored, or repeated in ``envelopes``, is skipped
        without error. The time is the message's own (``timestamp``, else a
        fedora-messaging ``sent-at`` header), else now.

        With ``describe`` (:meth:`notifier.meta.Describer.describe`), the new
        messages are also indexed for the rule preview
        (:mod:`notifier.storage.terms`); a message it cannot describe
        (:class:`InputError`) is stored unindexed.
        """
        now = self._clock()
        rows: dict[str, dict[str, Any]] = {}
        for index, envelope in enumerate(envelopes):
            if not isinstance(envelope, dict):
                raise InputError(f"message {index}: must be an object, "
                                 f"not {type(envelope).__name__}")
            msg_id = message_id(envelope)
            if msg_id in rows:
                continue
            stamp = message_time(envelope)
            rows[msg_id] = {"msg_id": msg_id, "topic": str(envelope.get("topic") or ""),
                            "timestamp": now if stamp is None else stamp,
                            "envelope": envelope}
        if not rows:
            return 0
        described: dict[str, dict[str, Any]] = {}
        if describe is not None:
            for msg_id, row in rows.items():
                try:
                    described[msg_id] = describe(row["envelope"])
                except InputError:
                    pass
        stmt = insert_ignoring(self.dialect, messages, ["msg_id"])
        inserted = 0
        written: dict[tuple[str, str], float] = {}
        with self._transaction("store messages") as conn:
            for chunk in _chunks(list(rows.values()), 5000):
                if describe is None:
                    # A plain executemany is several times faster than INSERT .. RETURNING
                    # on psycopg; both drivers sum the rows each statement inserted.
                    result = conn.execute(stmt, chunk,
                                          execution_options={"preserve_rowcount": True})
                    inserted += result.rowcount
                    continue
                new = conn.execute(stmt.returning(messages.c.id, messages.c.msg_id),
                                   chunk).all()
                inserted += len(new)
                written.update(terms.write_index(conn, self.dialect, terms.index_rows(
                    (r.id, rows[r.msg_id]["timestamp"], described[r.msg_id])
                    for r in new if r.msg_id in described), self.recent_terms, fresh=True))
        self.recent_terms.remember(written)
        return inserted

    def message_rows(self, since: float | None = None, topic_glob: str | None = None,
                     until: float | None = None) -> Iterator[StoredMessage]:
        """Stored messages, oldest first, from ``since`` (inclusive) to ``until`` (exclusive).

        ``topic_glob`` is an fnmatch pattern, matched case-sensitively. Rows
        are read a page at a time, each page in its own short transaction.
        """
        conditions = []
        if since is not None:
            conditions.append(messages.c.timestamp >= since)
        if until is not None:
            conditions.append(messages.c.timestamp < until)
        exact = True
        if topic_glob is not None:
            pattern, exact = glob_to_like(topic_glob)
            conditions.append(messages.c.topic.like(pattern, escape="\\"))
        columns = (messages.c.id, messages.c.msg_id, messages.c.topic, messages.c.timestamp,
                   messages.c.envelope)
        after: tuple[float, int] | None = None
        while True:
            query = select(*columns).where(*conditions)
            if after is not None:
                query = query.where(or_(messages.c.timestamp > after[0],
                                        and_(messages.c.timestamp == after[0],
                                             messages.c.id > after[1])))
            query = query.order_by(messages.c.timestamp, messages.c.id).limit(_PAGE)
            with self._transaction("read the message history", write=False) as conn:
                page = conn.execute(query).all()
            for row in page:
                if exact or topic_matches(row.topic, topic_glob or "*"):
                    yield StoredMessage(row.msg_id, row.topic, row.timestamp, row.envelope)
            if len(page) < _PAGE:
                return
            after = (page[-1].timestamp, page[-1].id)

    def messages(self, since: float | None = None, topic_glob: str | None = None
                 ) -> Iterator[dict[str, Any]]:
        """The stored envelopes, oldest first (see :meth:`message_rows`)."""
        for row in self.message_rows(since, topic_glob):
            yield row.envelope

    def get_message(self, msg_id: str) -> dict[str, Any] | None:
        """The stored envelope with ``msg_id``, or None."""
        with self._transaction(f"read message {msg_id!r}", write=False) as conn:
            return conn.scalar(select(messages.c.envelope).where(messages.c.msg_id == msg_id))

    def count_messages(self, since: float | None = None) -> int:
        """How many messages the history holds (from ``since`` on)."""
        query = select(func.count()).select_from(messages)
        if since is not None:
            query = query.where(messages.c.timestamp >= since)
        with self._transaction("count messages", write=False) as conn:
            return conn.scalar(query) or 0

    def prune_history(self, older_than: float, *, now: float | None = None) -> int:
        """Delete messages more than ``older_than`` seconds old; return how many."""
        cutoff = (self._clock() if now is None else now) - older_than
        with self._transaction("prune the message history") as conn:
            terms.prune_index(conn, cutoff)
            return conn.execute(delete(messages).where(messages.c.timestamp < cutoff)).rowcount
