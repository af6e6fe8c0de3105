"""Configuration: TOML files, validated against typed dataclasses.

Which file is read, first match wins:

1. the ``--config PATH`` flag of a command;
2. the ``NOTIFIER_CONFIG`` environment variable;
3. ``/etc/notifier/notifier.toml`` overlaid by ``~/.config/notifier/notifier.toml``
   (either may be missing);
4. built-in defaults, which work on one machine.

Every key is declared once, below, as a dataclass field with its type and
default. An unknown key or a value of the wrong type is a :class:`ConfigError`
naming the key and the file. Relative paths in path-valued keys are resolved
against the directory of the file that set them.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import ConfigError

SYSTEM_CONFIG = Path("/etc/notifier/notifier.toml")
ENV_VAR = "NOTIFIER_CONFIG"

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: keys that moved, and where to: named in the error for the old key
_MOVED = {"email.sender_process": "delivery.sender_process"}


def parse_duration(text: str) -> int:
    """Return the number of seconds in a duration such as ``30s``, ``15m``, ``7d``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h, 7d or 2w")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def check_network(text: str) -> None:
    """Raise ValueError unless ``text`` is an IP address or network."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or network like 10.0.0.0/8") from None


_ORIGIN = re.compile(r"^https?://[^/?#\s]+$")


def check_origin(text: str) -> None:
    """Raise ValueError unless ``text`` is a web origin: ``scheme://host[:port]``."""
    if not _ORIGIN.match(text):
        raise ValueError(f"{text!r} is not an origin like https://apps.example.org "
                         "(a scheme and a host, no path)")


def _path(**kw: Any) -> Any:
    return field(metadata={"path": True}, **kw)


def _duration(default: str) -> Any:
    return field(default=default, metadata={"check": parse_duration})


# -- [bus.amqp]: the AMQP transport (RabbitMQ, wire-compatible with fedora-messaging) --------
# Used when [bus] endpoints (consuming) or relay_inbound (publishing) is an amqp:// or
# amqps:// URL. The defaults match fedora-messaging's: exchange amq.topic, bindings of "#".


def check_window(value: int) -> None:
    """Raise ValueError unless ``value`` is at least 1."""
    if value < 1:
        raise ValueError(f"{value!r} must be at least 1")


@dataclass(frozen=True)
class AmqpBinding:
    """One ``[[bus.amqp.bindings]]`` entry, as fedora-messaging's ``[[bindings]]``."""

    exchange: str = "amq.topic"
    routing_keys: tuple[str, ...] = ("#",)


@dataclass(frozen=True)
class AmqpConfig:
    """``[bus.amqp]``: the queue notifier consumes from, and how it publishes."""

    # The durable queue notifier serve consumes from; workers sharing it share the work.
    queue: str = "notifier"
    bindings: tuple[AmqpBinding, ...] = (AmqpBinding(),)
    # Unacknowledged messages the broker hands one consumer (basic.qos).
    prefetch_count: int = 100
    # Messages rejected as bad go here (a fanout exchange) and into this durable queue.
    dead_letter_exchange: str = "notifier.dead"
    dead_letter_queue: str = "notifier.dead"
    # Where publishing goes; the routing key is the topic.
    publish_exchange: str = "amq.topic"
    # A message no queue is bound for is an error (basic.return), not a silent loss.
    mandatory: bool = True
    # Messages a publisher has out awaiting the broker's confirmation; a publish
    # waits while this many are. 1: each publish returns only once confirmed.
    confirm_window: int = field(default=1000, metadata={"check": check_window})
    # Backoff between reconnection attempts, seconds: doubling from base up to cap.
    reconnect_base: float = 0.5
    reconnect_cap: float = 30.0
    heartbeat: int = 60
    # amqps://: a CA bundle, and a client certificate and key (optional).
    ca_cert: str | None = _path(default=None)
    certificate: str | None = _path(default=None)
    private_key: str | None = _path(default=None)
    # The fedora_messaging_schema header of what notifier publishes (fedora-messaging's
    # base class, which every consumer can read).
    schema: str = "base.message"


# -- end of [bus.amqp] -----------------------------------------------------------------------


@dataclass(frozen=True)
class BusConfig:
    """``[bus]``: where the ZeroMQ sockets (or the AMQP broker, ``[bus.amqp]``) live."""

    relay_inbound: str = "tcp://127.0.0.1:9941"
    endpoints: tuple[str, ...] = ("tcp://127.0.0.1:9940",)
    # When set, notifier.publish binds here (fedmsg's passive mode) instead of
    # connecting to relay_inbound.
    publish_endpoint: str | None = None
    # Messages queued per peer on each socket: the relay's, serve's subscriber and
    # every publisher's. Past it a publisher blocks, then fails loudly (never drops);
    # a subscriber that falls that far behind loses messages, as PUB/SUB does. 0
    # means no limit, and no bound on memory under a flood.
    high_water_mark: int = 10000
    # ZeroMQ drops the connection of a peer sending a bigger frame (ZMQ_MAXMSGSIZE),
    # on the relay's inbound socket and serve's subscriber: a bound on memory.
    # Frames between max_message_bytes and this are received, rejected and kept in
    # 'notifier history rejected'. Never less than max_message_bytes plus 64 KiB.
    max_frame_bytes: int = 4194304
    # Seconds a publisher waits for a subscriber before it gives up.
    publish_timeout: float = 5.0
    # notifier serve runs the relay itself; turn off when a separate relay (or
    # several serve workers sharing one) is used.
    embedded_relay: bool = True
    # The AMQP transport's settings (a section of its own: [bus.amqp]).
    amqp: AmqpConfig = AmqpConfig()

    def frame_limit(self, max_message_bytes: int) -> int:
        """ZMQ_MAXMSGSIZE for the sockets that receive: never below what is accepted."""
        return max(self.max_frame_bytes, max_message_bytes + 65536)


@dataclass(frozen=True)
class CryptoConfig:
    """``[crypto]``: X.509 material for signing and validating messages."""

    certificate: str | None = _path(default=None)
    private_key: str | None = _path(default=None)
    ca_cert: str | None = _path(default=None)
    crl: str | None = _path(default=None)


@dataclass(frozen=True)
class MetaMapping:
    """One ``[[meta.mappings]]`` entry: how to describe a site's own topic.

    Each ``*_path`` is a dotted path into the message body, for example
    ``"build.owner"``; list-valued fields accept several paths.
    """

    topic: str
    app: str | None = None
    summary: str | None = None
    summary_path: str | None = None
    link_path: str | None = None
    icon: str | None = None
    agent_path: str | None = None
    usernames_paths: tuple[str, ...] = ()
    packages_paths: tuple[str, ...] = ()
    containers_paths: tuple[str, ...] = ()
    modules_paths: tuple[str, ...] = ()
    flatpaks_paths: tuple[str, ...] = ()
    groups_paths: tuple[str, ...] = ()
    severity: str | None = None


@dataclass(frozen=True)
class MetaConfig:
    """``[meta]``: sources of message metadata."""

    mappings: tuple[MetaMapping, ...] = ()
    # Each source can be switched off, for example to keep a slow one away.
    use_fedora_messaging: bool = True
    use_fedmsg_meta: bool = True


@dataclass(frozen=True)
class FasjsonConfig:
    """``[fasjson]``: an optional source of user profiles."""

    url: str | None = None
    auth: str = "gssapi"
    cache_ttl: str = _duration("1h")


@dataclass(frozen=True)
class HistoryConfig:
    """``[history]``: how long received messages are kept."""

    retention: str = _duration("30d")
    # Rejected bus messages kept for 'notifier history rejected': the newest ones.
    keep_rejected: int = 10000


@dataclass(frozen=True)
class EmailConfig:
    """``[email]``: SMTP, or a local Maildir when ``smtp_host`` is not set."""

    smtp_host: str | None = None
    smtp_port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    from_address: str = "notifier@localhost"
    # Where mail goes with no smtp_host. Empty: $XDG_DATA_HOME/notifier/Maildir.
    maildir: str | None = _path(default=None)
    # List-Id header value.
    list_id: str = "notifications.notifier.localhost"
    timeout: float = 30.0
    # SMTP connections used side by side by notifier serve.
    connections: int = 4


@dataclass(frozen=True)
class IrcConfig:
    """``[irc]``: the bot that sends private messages."""

    host: str | None = None
    port: int = 6667
    tls: bool = False
    nick: str = "notifier"
    sasl_username: str | None = None
    sasl_password: str | None = None
    # Lines per second, with bursts of up to ``burst`` lines.
    rate: float = 2.0
    burst: int = 5


@dataclass(frozen=True)
class DbusConfig:
    """``[dbus]``: desktop notifications on this session bus."""

    # The one user whose desktop destination goes to this session bus.
    user: str | None = None
    # The session bus; empty means $DBUS_SESSION_BUS_ADDRESS.
    address: str | None = None
    # Milliseconds; -1 lets the notification server decide.
    expire_timeout: int = -1
    app_name: str = "notifier"


# -- [matrix] ------------------------------------------------------------------

def check_matrix_homeserver(text: str) -> None:
    """Raise ValueError unless ``text`` is empty or an http(s) URL with a host."""
    if text and not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", text):
        raise ValueError(f"{text!r} is not a homeserver URL like https://matrix.example.org")


def check_matrix_user_id(text: str) -> None:
    """Raise ValueError unless ``text`` is empty or a Matrix user id ``@name:server``."""
    if text and not re.fullmatch(r"@[^\s:]+:[^\s:]+(:\d+)?", text):
        raise ValueError(f"{text!r} is not a Matrix user id like @notifier:example.org")


@dataclass(frozen=True)
class MatrixConfig:
    """``[matrix]``: the bot account that sends people their notifications as direct
    messages on Matrix."""

    # The bot's homeserver (client-server API base). Empty turns the matrix destination off.
    homeserver: str = field(default="", metadata={"check": check_matrix_homeserver})
    # The bot's own user id, and an access token of one of its sessions.
    user_id: str = field(default="", metadata={"check": check_matrix_user_id})
    access_token: str = ""
    # The file that remembers each person's direct room across restarts.
    # Empty: $XDG_DATA_HOME/notifier/matrix-rooms.json.
    rooms_file: str | None = _path(default=None)
    # Seconds to wait for one answer of the homeserver.
    timeout: float = 10.0


# -- end of [matrix] -------------------------------------------------------------


def check_push_contact(text: str) -> None:
    """Raise ValueError unless ``text`` is empty or a ``mailto:`` or ``https:`` URI."""
    if text and not re.fullmatch(r"(mailto:[^\s@]+@[^\s@]+|https://[^\s/]+\S*)", text):
        raise ValueError(f"{text!r} is not a contact like mailto:admin@example.org or "
                         "https://example.org/contact")


def check_push_ttl(text: str) -> None:
    """Raise ValueError unless ``text`` is a duration from 1 s to 28 days."""
    seconds = parse_duration(text)
    if not 1 <= seconds <= 28 * 86400:
        raise ValueError(f"{text!r} must be from 1s to 28d (0 would drop every "
                         "notification for a browser that is not online at that instant)")


@dataclass(frozen=True)
class WebpushConfig:
    """``[webpush]``: notifications to browsers through their push services (Web Push)."""

    # Who runs this service, for the push services (the VAPID "sub" claim): a
    # mailto: or https: URI. Empty turns the webpush destination off.
    contact: str = field(default="", metadata={"check": check_push_contact})
    # How long a push service keeps a notification for a browser that is offline.
    ttl: str = field(default="1d", metadata={"check": check_push_ttl})
    # Seconds to wait for a push service's answer.
    timeout: float = 10.0
    # FOR TESTS ONLY: accept subscriptions whose push service is on a private,
    # loopback or link-local address, or plain http. Never in production: anyone
    # who can subscribe could then make the service send requests inside its network.
    allow_private_endpoints: bool = False


@dataclass(frozen=True)
class HttpConfig:
    """``[http]``: feeds, the live stream, unsubscribe links, health and metrics."""

    listen: str = "127.0.0.1:8080"
    # Public address used in links; empty means http://{listen}.
    base_url: str | None = None
    # Connections the kernel queues until serve accepts them: room for every live
    # stream reconnecting at once after a restart.
    backlog: int = 4096
    # Open connections at most (live streams included); beyond that, 503.
    max_connections: int = 16384
    # Seconds a client has to send a whole request, headers and body: 408 or closed after.
    request_timeout: float = 10.0
    # Seconds an idle keep-alive connection stays open.
    keep_alive_timeout: float = 5.0
    # Request size limits: headers beyond max_header_bytes are a 400, a body beyond
    # max_body_bytes a 413.
    max_header_bytes: int = 16384
    max_body_bytes: int = 65536
    # Web origins (scheme://host[:port]) whose pages may read feeds and open live
    # streams (CORS). Empty: none.
    allowed_origins: tuple[str, ...] = field(default=(), metadata={"check": check_origin})
    # Reverse proxies (addresses or networks) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: the client's address then comes from them
    # (rate limits per address). Empty: the connection's own address.
    trusted_proxies: tuple[str, ...] = field(default=(), metadata={"check": check_network})
    # Serve HTTP from a child process of notifier serve (true), or from a thread of it
    # (false). In a process of its own, requests never wait for the ingest's turn at
    # the interpreter lock: under a busy bus they answer as fast as on a quiet one.
    process: bool = True

    def public_url(self) -> str:
        """Where users reach the service: ``base_url``, else ``http://{listen}``."""
        return (self.base_url or f"http://{self.listen}").rstrip("/")

    def feed_url(self, user: str, token: str, fmt: str = "atom") -> str:
        """The address of ``user``'s feed (``atom`` or ``rss``)."""
        return f"{self.public_url()}/feeds/{quote(user, safe='')}.{fmt}" \
               f"?token={quote(token, safe='')}"


def check_admin(text: str) -> None:
    """Raise ValueError unless ``text`` names a user or, with ``@``, a group."""
    if not re.fullmatch(r"@?[A-Za-z0-9_.][A-Za-z0-9_.-]*", text):
        raise ValueError(f"{text!r} is not a user name or @group")


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: sign-in, sessions and the API under ``/api/v1``."""

    # OpenID Connect: the issuer URL (its /.well-known/openid-configuration is read);
    # empty turns OIDC sign-in off.
    oidc_issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    # The ID token or userinfo claims that name the user and list their groups.
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    # Admins: user names, or "@group" for every member of a group.
    admins: tuple[str, ...] = field(default=(), metadata={"check": check_admin})
    # How long a session lasts after sign-in.
    session_ttl: str = _duration("14d")
    # Sign-in links sent by email, for people of sites without OIDC.
    email_signin: bool = True
    # Signs session cookies; empty: one is made on first use and kept in the database.
    secret_key: str = ""
    # Requests per minute per signed-in user, and per client address, before 429.
    user_rate: int = 600
    address_rate: int = 1200
    # Sign-in links sent per address per hour.
    signin_links_per_hour: int = 5

    def is_admin(self, name: str, groups: typing.Iterable[str]) -> bool:
        """Whether ``name``, a member of ``groups``, is named in ``admins``."""
        groups = set(groups)
        return any(entry == name or (entry.startswith("@") and entry[1:] in groups)
                   for entry in self.admins)


@dataclass(frozen=True)
class DeliveryConfig:
    """``[delivery]``: the outbox."""

    max_attempts: int = 8
    # First retry after about this many seconds, doubling each time, with jitter.
    retry_base: float = 5.0
    retry_max: float = 3600.0
    # Items kept per user in the RSS/Atom feed.
    feed_items: int = 100
    # notifier serve sends SMTP mail and the feeds' digests from a child process of its
    # own, so neither waits for the ingest; false does both from threads.
    sender_process: bool = True


# -- [firehose]: the IRC firehose bot (notifier firehose) ------------------------------------

#: the 16 mIRC colours, by the names ``[firehose] colors`` accepts (or their numbers 0-15)
IRC_COLOURS = ("white", "black", "blue", "green", "red", "brown", "purple", "orange", "yellow",
               "lime", "teal", "cyan", "royal", "pink", "grey", "silver")
#: the severities of the rules' vocabulary (notifier.rules.model.SEVERITIES)
_FIREHOSE_SEVERITIES = ("debug", "info", "warning", "error")


def check_irc_colour(text: str) -> None:
    """Raise ValueError unless ``text`` is ``app=colour`` with an mIRC colour name or 0-15."""
    app, sep, colour = text.partition("=")
    if not sep or not app.strip() or not (colour.strip() in IRC_COLOURS or (
            colour.strip().isdigit() and 0 <= int(colour) <= 15)):
        raise ValueError(f"{text!r} is not app=colour, with a colour from "
                         f"{', '.join(IRC_COLOURS)} or 0-15")


def check_regex(text: str) -> None:
    """Raise ValueError unless ``text`` is a valid regular expression."""
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"{text!r} is not a regular expression: {exc}") from None


def check_firehose_severity(text: str) -> None:
    """Raise ValueError unless ``text`` is a severity of the rules."""
    if text not in _FIREHOSE_SEVERITIES:
        raise ValueError(f"{text!r} is not a severity: {', '.join(_FIREHOSE_SEVERITIES)}")


def check_irc_method(text: str) -> None:
    """Raise ValueError unless ``text`` is notice or privmsg."""
    if text not in ("notice", "privmsg"):
        raise ValueError(f"{text!r} must be notice or privmsg")


def check_channel(text: str) -> None:
    """Raise ValueError unless ``text`` is an IRC channel name."""
    if not re.fullmatch(r"[#&+!][^\s,\x07\x00]{1,49}", text):
        raise ValueError(f"{text!r} is not a channel name like #fedora-fedmsg")


def check_listen(text: str) -> None:
    """Raise ValueError unless ``text`` is empty or ``host:port``."""
    if text and not re.fullmatch(r"[^\s:]*:\d{1,5}", text):
        raise ValueError(f"{text!r} is not host:port like 127.0.0.1:9945")


@dataclass(frozen=True)
class FirehoseFilter:
    """``include`` or ``exclude`` of a firehose channel: the rules' vocabulary.

    An empty list leaves that field out. ``include`` passes a message when every
    field given matches (any item of a list); ``exclude`` drops it when any field
    given matches.
    """

    topics: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    severities: tuple[str, ...] = field(default=(), metadata={"check": check_firehose_severity})
    users: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    # A regular expression searched in the summary.
    summary: str = field(default="", metadata={"check": check_regex})


@dataclass(frozen=True)
class FirehoseChannel:
    """One ``[[firehose.networks.channels]]``: where and what to post."""

    name: str = field(metadata={"check": check_channel})
    key: str = ""
    method: str = field(default="notice", metadata={"check": check_irc_method})
    # Seconds a message may wait for its line; past that, the queue is folded.
    max_delay: float = 30.0
    include: FirehoseFilter = FirehoseFilter()
    exclude: FirehoseFilter = FirehoseFilter()


@dataclass(frozen=True)
class FirehoseNetwork:
    """One ``[[firehose.networks]]``: an IRC server and its channels."""

    host: str
    name: str = ""
    port: int = 6667
    tls: bool = False
    # Check the server's certificate (turn off only for a test server).
    tls_verify: bool = True
    nick: str = "notifier-firehose"
    # SASL PLAIN, when both are set; else NickServ IDENTIFY when nickserv_password is.
    sasl_username: str = ""
    sasl_password: str = ""
    nickserv_password: str = ""
    # Lines per second to this network, all channels together, in bursts of up to ``burst``.
    line_rate: float = 1.0
    burst: int = 4
    channels: tuple[FirehoseChannel, ...] = ()


def check_matrix_room(text: str) -> None:
    """Raise ValueError unless ``text`` is a Matrix room id or alias."""
    if not re.fullmatch(r"![^\s]+|#[^\s:]+:\S+", text):
        raise ValueError(f"{text!r} is not a room id like !abc:example.org or an alias "
                         "like #room:example.org")


def check_matrix_method(text: str) -> None:
    """Raise ValueError unless ``text`` is notice or text."""
    if text not in ("notice", "text"):
        raise ValueError(f"{text!r} must be notice or text")


@dataclass(frozen=True)
class FirehoseRoom:
    """One ``[[firehose.matrix.rooms]]``: a Matrix room and what to post there."""

    room: str = field(metadata={"check": check_matrix_room})
    # m.notice or m.text
    method: str = field(default="notice", metadata={"check": check_matrix_method})
    # Seconds a message may wait for its line; past that, the queue is folded.
    max_delay: float = 30.0
    include: FirehoseFilter = FirehoseFilter()
    exclude: FirehoseFilter = FirehoseFilter()


@dataclass(frozen=True)
class FirehoseMatrix:
    """One ``[[firehose.matrix]]``: a homeserver account and the rooms it posts to."""

    homeserver: str
    user_id: str
    access_token: str
    name: str = ""
    # Lines per second to this homeserver, all rooms together, in bursts of up to ``burst``.
    line_rate: float = 1.0
    burst: int = 4
    rooms: tuple[FirehoseRoom, ...] = ()


@dataclass(frozen=True)
class FirehoseConfig:
    """``[firehose]``: the IRC bot that posts the bus to channels (``notifier firehose``)."""

    # Run the bot inside notifier serve too.
    enabled: bool = False
    networks: tuple[FirehoseNetwork, ...] = ()
    matrix: tuple[FirehoseMatrix, ...] = ()
    # app=colour entries (mIRC colour names or 0-15) overriding the stable default mapping.
    colors: tuple[str, ...] = field(default=(), metadata={"check": check_irc_colour})
    # Messages kept for the "last" command.
    history: int = 1000
    # host:port for the bot's Prometheus /metrics; empty: none (notifier serve's
    # /metrics is not shared with it).
    metrics_listen: str = field(default="", metadata={"check": check_listen})


@dataclass(frozen=True)
class Config:
    """The whole configuration. Build it with :func:`load_config`."""

    topic_prefix: str = "org.fedoraproject"
    environment: str = "dev"
    sign_messages: bool = False
    validate_signatures: bool = False
    # Empty means a SQLite file under $XDG_DATA_HOME/notifier/.
    database_url: str | None = None
    bus: BusConfig = BusConfig()
    crypto: CryptoConfig = CryptoConfig()
    meta: MetaConfig = MetaConfig()
    fasjson: FasjsonConfig = FasjsonConfig()
    history: HistoryConfig = HistoryConfig()
    email: EmailConfig = EmailConfig()
    irc: IrcConfig = IrcConfig()
    dbus: DbusConfig = DbusConfig()
    http: HttpConfig = HttpConfig()
    web: WebConfig = WebConfig()
    webpush: WebpushConfig = WebpushConfig()
    matrix: MatrixConfig = MatrixConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    firehose: FirehoseConfig = FirehoseConfig()
    # A site's template directory, searched before the built-in templates.
    templates_dir: str | None = _path(default=None)
    # Bigger messages are rejected (counted, and kept in 'notifier history rejected')
    # by notifier serve; see also [bus] max_frame_bytes.
    max_message_bytes: int = 1048576
    # The files this configuration was read from, first to last.
    sources: tuple[str, ...] = field(default=(), metadata={"internal": True})

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the user's data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{data_dir() / 'notifier.db'}"


def data_dir() -> Path:
    """``$XDG_DATA_HOME/notifier`` (default ``~/.local/share/notifier``), not created."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "notifier"


def load_config(path: str | os.PathLike[str] | None = None,
                environ: typing.Mapping[str, str] | None = None) -> Config:
    """Load the configuration, following the order in the module docstring."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get(ENV_VAR):
        path = environ[ENV_VAR]
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        files = [path]
    else:
        home = environ.get("HOME") or os.path.expanduser("~")
        user = Path(environ.get("XDG_CONFIG_HOME") or Path(home) / ".config")
        files = [p for p in (SYSTEM_CONFIG, user / "notifier" / "notifier.toml") if p.is_file()]
    merged: dict[str, Any] = {}
    for file in files:
        _merge(merged, _check_table(_read(file), Config, str(file), ""))
    merged["sources"] = tuple(str(f) for f in files)
    return _build(Config, merged)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate ``data`` as if it were a config file named ``source``."""
    checked = _check_table(data, Config, source, "")
    checked["sources"] = (source,)
    return _build(Config, checked)


def _read(file: Path) -> dict[str, Any]:
    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _check_table(raw: dict[str, Any], cls: type, source: str, prefix: str) -> dict[str, Any]:
    """Check one table's keys and types; return it converted, nested tables as dicts."""
    fields = _fields(cls)
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            if name in _MOVED:
                section, _, moved = _MOVED[name].rpartition(".")
                hint = f" (it is '{moved}' in [{section}] now)"
            where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
            raise ConfigError(f"{source}: unknown key '{name}' in {where}{hint}")
        out[key] = _convert(value, hints[key], fields[key], source, name)
    missing = [n for n, f in fields.items()
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and n not in raw]
    if missing:
        raise ConfigError(f"{source}: '{prefix}' is missing required key '{prefix}{missing[0]}'")
    return out


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a table"
    origin = typing.get_origin(tp)
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return "an array of tables" if dataclasses.is_dataclass(inner) else \
            f"an array of {_describe(inner)}s"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, fld: dataclasses.Field[Any] | None, source: str,
             name: str) -> Any:
    def wrong() -> ConfigError:
        return ConfigError(f"{source}: '{name}' must be {_describe(tp)}, "
                           f"not {type(value).__name__} {value!r}")

    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        # Only "X | None" is used; TOML has no null, so the value is an X.
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(value, inner, fld, source, name)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise wrong()
        return _check_table(value, tp, source, f"{name}.")
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong()
        inner = typing.get_args(tp)[0]
        items = [_convert(v, inner, fld, source, f"{name}[{i}]") for i, v in enumerate(value)]
        if dataclasses.is_dataclass(inner):
            items = [_build(inner, item) for item in items]
        return tuple(items)
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        if fld is not None and "check" in fld.metadata:
            try:
                fld.metadata["check"](value)
            except ValueError as exc:
                raise ConfigError(f"{source}: '{name}': {exc}") from exc
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong()
        if fld is not None and "check" in fld.metadata:
            try:
                fld.metadata["check"](value)
            except ValueError as exc:
                raise ConfigError(f"{source}: '{name}': {exc}") from exc
        if fld is not None and fld.metadata.get("path"):
            value = str((Path(source).parent / os.path.expanduser(value)).resolve()) \
                if not source.startswith("<") else os.path.expanduser(value)
        return value
    raise TypeError(f"config field {name} has unsupported type {tp!r}")  # a bug in this module


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = _build(tp, value)
        kwargs[key] = value
    return cls(**kwargs)
