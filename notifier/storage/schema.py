"""The tables, as SQLAlchemy Core metadata.

This describes the schema at the newest migration; the migrations under
``migrations/versions`` are what actually create it, and a new table or
column goes into both. Every table of the project is declared here, and
only here. Every table has a surrogate integer key or a natural composite
one, so that tables can refer to users and messages by a stable id.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

#: names for constraints, so later migrations (SQLite batch mode) can address them
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY
BigId = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("emails", JSON, nullable=False),
    Column("ircnicks", JSON, nullable=False),
    Column("groups", JSON, nullable=False),
    # Per-user delivery settings: a JSON object, or NULL for the defaults.
    Column("delivery", JSON(none_as_null=True), nullable=True),
    # Secret part of the user's feed URL, set once when the user is created.
    Column("feed_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("name"),
    UniqueConstraint("feed_token"),
)

owners = Table(
    "owners", metadata,
    Column("package", String(255), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("name", String(255), nullable=False),
    PrimaryKeyConstraint("package", "kind", "name"),
    CheckConstraint("kind IN ('user', 'group')", name="kind"),
    Index(None, "kind", "name"),
)

rules = Table(
    "rules", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False),
    # The rule as validated by notifier.rules, stored whole.
    Column("document", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("username", "name"),
)

messages = Table(
    "messages", metadata,
    Column("id", BigId, primary_key=True),
    Column("msg_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    # Seconds since the epoch: the message's own time, else when it was stored.
    Column("timestamp", Float, nullable=False),
    # The envelope exactly as received or imported.
    Column("envelope", JSON, nullable=False),
    UniqueConstraint("msg_id"),
    Index(None, "topic"),
    Index(None, "timestamp"),
)

profile_cache = Table(
    "profile_cache", metadata,
    Column("name", String(255), nullable=False, primary_key=True),
    # The profile as notifier.users uses it; NULL when the directory has no such user.
    Column("profile", JSON(none_as_null=True), nullable=True),
    Column("fetched_at", Float, nullable=False),
)

#: Each user's newest feed items (notifier.storage.feeds; migration 0002).
feed_items = Table(
    "feed_items", metadata,
    Column("id", BigId, primary_key=True),
    Column("username", String(255), nullable=False),
    Column("msg_id", Text, nullable=False),
    Column("title", Text, nullable=False),
    # Rendered HTML, as the render stage made it; sanitized when the feed is written.
    Column("content", Text, nullable=False),
    Column("link", Text, nullable=True),
    Column("topic", Text, nullable=False),
    Column("app", Text, nullable=False),
    # Seconds since the epoch: the message's own time, else when it was stored.
    Column("published", Float, nullable=False),
    Column("stored_at", Float, nullable=False),
    UniqueConstraint("username", "msg_id"),
    Index(None, "username", "id"),
)

# -- delivery (migrations 0003 to 0005) ----------------------------------------

outbox = Table(
    "outbox", metadata,
    Column("id", BigId, primary_key=True),
    Column("user", String(255), nullable=False),
    Column("msg_id", Text, nullable=False),
    Column("destination", String(32), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # When the next attempt may start (seconds since the epoch).
    Column("next_attempt", Float, nullable=False),
    # A worker that took the row owns it until then; after a crash it expires.
    Column("claimed_until", Float, nullable=True),
    # The worker (table workers) that claimed it: its claims end when its heartbeat stops.
    Column("claimed_by", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    # notifier.backends.base.Notification.to_dict(): rendered, ready to send.
    Column("notification", JSON, nullable=False),
    UniqueConstraint("user", "msg_id", "destination"),
    Index(None, "destination", "state", "next_attempt"),
    # Digests, the depth gauge and the lag gauge look rows up by state alone.
    Index(None, "state", "created_at"),
    # A user's rows in id order, for the two readers that need them, each indexing
    # only its own rows: an index on every row keyed by user costs each insert a
    # write to a page of its own (measured: 3.6 times the insert's cost).
    Index("ix_outbox_desktop_user_id", "user", "id",
          sqlite_where=text("destination = 'desktop'"),
          postgresql_where=text("destination = 'desktop'")),  # the live stream
    Index("ix_outbox_held_user_destination_id", "user", "destination", "id",
          sqlite_where=text("state = 'held'"),
          postgresql_where=text("state = 'held'")),  # digests
)

digest_state = Table(
    "digest_state", metadata,
    Column("user", String(255), primary_key=True),
    Column("destination", String(32), primary_key=True),
    # When the last digest went out, and for which window of the schedule.
    Column("last_sent", Float, nullable=False),
    Column("last_window", Integer, nullable=False),
)

#: Every change to rules, owners and users, in order, so a running service can
#: apply other processes' changes to its matcher incrementally.
changes = Table(
    "changes", metadata,
    Column("seq", BigId, primary_key=True),
    Column("kind", String(8), nullable=False),  # rule, owner, user
    Column("op", String(8), nullable=False),    # upsert, delete (rule, user); add, remove (owner)
    Column("key1", String(255), nullable=False),  # user name, or the package
    Column("key2", String(255), nullable=True),   # rule name, or the owner kind
    Column("key3", String(255), nullable=True),   # the owner name
    Column("at", Float, nullable=False),
)

settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Bus messages notifier serve rejected, the newest few thousand (notifier.storage.rejected;
#: migration 0006), for 'notifier history rejected'.
rejected_messages = Table(
    "rejected_messages", metadata,
    Column("id", BigId, primary_key=True),
    # Seconds since the epoch, when it was rejected.
    Column("at", Float, nullable=False),
    # One of notifier.bus.checks.REASONS, and what exactly was wrong.
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    # What the message said these were, when it could be read that far.
    Column("msg_id", Text, nullable=True),
    Column("topic", Text, nullable=True),
    # The envelope frame as received, cut to a bound; ``size`` is its whole length.
    Column("payload", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Index(None, "at"),
)

# -- sign-in (migration 0007; notifier.storage.credentials) ----------------------
# Secrets are never stored: only the SHA-256 of each session, token and link.

sessions = Table(
    "sessions", metadata,
    Column("id", BigId, primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("user", String(255), nullable=False),
    # How the person signed in: oidc, link.
    Column("method", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    UniqueConstraint("secret_hash"),
    Index(None, "user"),
)

#: Personal access tokens, for programs (the desktop app): scope read or write.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", BigId, primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("user", String(255), nullable=False),
    Column("name", String(100), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    # Updated at most once a minute, so that a busy token does not write per request.
    Column("last_used", Float, nullable=True),
    UniqueConstraint("secret_hash"),
    UniqueConstraint("user", "name"),
    CheckConstraint("scope IN ('read', 'write')", name="scope"),
)

#: Single-use sign-in links, sent by email or printed by 'notifier users login-link'.
login_links = Table(
    "login_links", metadata,
    Column("id", BigId, primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("user", String(255), nullable=False),
    # The address it was sent to; NULL when an admin printed it.
    Column("address", String(320), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    UniqueConstraint("secret_hash"),
    Index(None, "address", "created_at"),
)

#: Every notification each user got, one row per (user, message) whatever its
#: destinations, for the inbox of the web API (notifier.storage.inbox; migration 0010).
#: Written with the message's outbox rows, in the same transaction; pruned with the history.
inbox = Table(
    "inbox", metadata,
    Column("id", BigId, primary_key=True),
    Column("user", String(255), nullable=False),
    Column("msg_id", Text, nullable=False),
    # What the inbox shows: the message's summary, link, application, topic, severity.
    Column("title", Text, nullable=False),
    Column("link", Text, nullable=True),
    Column("app", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    # Seconds since the epoch: the message's own time, else when it was stored.
    Column("timestamp", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    # The names of the user's rules that matched, and (when the matcher explained
    # them) why each did: {rule name: reason}.
    Column("rules", JSON, nullable=False),
    Column("why", JSON(none_as_null=True), nullable=True),
    Column("read", Boolean, nullable=False, default=False),
    # The one index: a user's rows newest first (pages, read-all), and with ``read``
    # in it, the counts and the unread filter are answered from the index alone.
    # No unique (user, msg_id): rows are written only for messages new to the history.
    Index(None, "user", "id", "read"),
)

#: How many messages each rule sent its user, per UTC day (migration 0012): the rules'
#: "sent in the last 7 days" without reading a week of inbox rows. Written with the inbox
#: rows, pruned with them.
rule_sends = Table(
    "rule_sends", metadata,
    Column("user", String(255), nullable=False),
    Column("rule", String(255), nullable=False),
    # Days since the epoch, UTC.
    Column("day", Integer, nullable=False, autoincrement=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("user", "day", "rule"),
    sqlite_with_rowid=False,
)

# -- the history's index, for the rule preview and the rule editor's look-ups (migration 0008) --

#: Term values compare byte by byte on both databases, so that a prefix is a range of the index.
TermText = Text().with_variant(Text(collation="C"), "postgresql")

#: One row per indexed message: what the rule filters look at (notifier.storage.terms).
message_facts = Table(
    "message_facts", metadata,
    # messages.id; a message has a row here once it is indexed.
    Column("message_id", BigId, primary_key=True, autoincrement=False),
    Column("timestamp", Float, nullable=False),
    Column("topic", Text, nullable=False),
    # Lower-case; "" when the message names none.
    Column("app", Text, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("agent", Text, nullable=True),
)

#: What each indexed message is about: (kind, value) terms, kind being one of
#: notifier.storage.terms.TERM_KINDS, looked up by value and newest first.
message_terms = Table(
    "message_terms", metadata,
    Column("kind", String(8), nullable=False),
    Column("value", TermText, nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("message_id", BigId, nullable=False),
    PrimaryKeyConstraint("kind", "value", "timestamp", "message_id"),
    Index(None, "message_id"),
    sqlite_with_rowid=False,
)

#: Every term the history holds, with the newest message that has it: the
#: look-ups' vocabulary, and the topics a topic glob is matched against.
history_terms = Table(
    "history_terms", metadata,
    Column("kind", String(8), nullable=False),
    Column("value", TermText, nullable=False),
    Column("last_seen", Float, nullable=False),
    PrimaryKeyConstraint("kind", "value"),
    sqlite_with_rowid=False,
)

# -- destinations (migration 0009; notifier.storage.destinations) ---------------

#: Where a person can be reached, beyond the delivery settings: each email address and
#: IRC nick, pending until verified. Rows from the user record (identity provider or
#: 'notifier users import') are verified by where they came from; a person's own are
#: pending until they confirm them. Only the hash of a verification secret is kept.
destinations = Table(
    "destinations", metadata,
    Column("id", BigId, primary_key=True),
    Column("user", String(255), nullable=False),
    # email, irc (matrix, webpush later)
    Column("kind", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    # pending, verified
    Column("state", String(10), nullable=False),
    # record (identity provider, 'notifier users import'), person (added through the API)
    Column("origin", String(10), nullable=False),
    # The SHA-256 of the confirmation link's secret or of the IRC code; NULL once used.
    Column("secret_hash", String(64), nullable=True),
    Column("secret_expires", Float, nullable=True),
    # Wrong codes entered for the current secret.
    Column("attempts", Integer, nullable=False, default=0),
    # When the current secret was sent, for limiting resends.
    Column("sent_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("verified_at", Float, nullable=True),
    UniqueConstraint("user", "kind", "address"),
    UniqueConstraint("secret_hash"),
    CheckConstraint("state IN ('pending', 'verified')", name="state"),
    CheckConstraint("origin IN ('record', 'person')", name="origin"),
)

#: Browsers' Web Push subscriptions (notifier.storage.push; migration 0011): where the
#: webpush destination sends a user's notifications. ``p256dh`` and ``auth`` are the
#: browser's keys (base64url), which encrypt each payload for it alone (RFC 8291).
push_subscriptions = Table(
    "push_subscriptions", metadata,
    Column("id", BigId, primary_key=True),
    Column("user", String(255), nullable=False),
    # The push service's URL for this browser: https, on a public address.
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    # A label the person recognises the browser by ("Firefox on Linux"), or NULL.
    Column("user_agent", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    # When the push service last accepted a notification for it; NULL: never.
    Column("last_success", Float, nullable=True),
    # The unique (user, endpoint) index also finds a user's subscriptions.
    UniqueConstraint("user", "endpoint"),
)

# Which browsers took a notification whose push failed for another browser of the same
# user: its retry skips them. Only kept while such a retry may come.
push_deliveries = Table(
    "push_deliveries", metadata,
    Column("subscription_id", BigId, nullable=False),
    Column("msg_id", Text, nullable=False),
    Column("delivered_at", Float, nullable=False),
    PrimaryKeyConstraint("subscription_id", "msg_id"),
    Index("ix_push_deliveries_delivered_at", "delivered_at"),
)

#: Compact images of the matcher's index (notifier.rules.snapshot; migration 0014), so a
#: worker starts without decoding and validating every rule. ``change_seq`` is the change
#: log's position the image reflects and ``change_mark`` that entry's fingerprint: a
#: snapshot whose entry is gone or different is stale, and rebuilt by a full load.
rule_snapshots = Table(
    "rule_snapshots", metadata,
    Column("name", String(32), primary_key=True),
    Column("format", Integer, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("change_mark", Text, nullable=True),
    # The destination names the rules were validated against, sorted, comma-separated.
    Column("destinations", Text, nullable=False),
    Column("rules", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

#: every running ``notifier serve`` (see :mod:`notifier.storage.workers`)
workers = Table(
    "workers", metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("started", Float, nullable=False),
    # Seconds since the epoch of its last beat: older than DEAD_AFTER, its claims are void.
    Column("heartbeat", Float, nullable=False),
)
