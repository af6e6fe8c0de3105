"""The app's settings: ``$XDG_CONFIG_HOME/notifier/desktop.toml``, checked whole.

Every problem is reported at once, each naming the file and the key (an
unknown key gets the nearest known one as a suggestion); a file with any
problem is refused. See :data:`TEMPLATE` for every key.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MODES = ("server", "bus")

TEMPLATE = """\
# notifier-desktop: where notifications come from, and how they are shown.
# "server" (a notifier service's live stream) or "bus" (the message bus itself).
mode = "server"

[server]
url = {url}           # the service's address (its [http] base_url)
user = {user}
token = {token}       # a read token (notifier tokens / the web app), or the feed token
api_token = {api_token}   # a write token: "Mute rule" and "Mark all read" (optional)
web_url = ""            # what "Open notifier" opens; default: the web app, or the feed

[notifications]
app_name = "notifier"
burst = 5               # more than this many within burst_window seconds collapse into one
burst_window = 10
expire_timeout = -1     # milliseconds; -1 lets the notification daemon decide
do_not_disturb = false  # collect notifications without showing them
icon_cache = 200        # icons kept under $XDG_CACHE_HOME/notifier/icons

# [bus]                 # mode = "bus": subscribe to these endpoints and match locally
# endpoints = ["tcp://127.0.0.1:9940"]
# [[bus.filters]]       # one rule's track and filters, in the rules' vocabulary
# track = {{kind = "topics", patterns = ["*.git.*"]}}
"""


class ConfigError(Exception):
    """The config file cannot be used; the message lists every problem."""


@dataclass(frozen=True)
class ServerSettings:
    url: str = ""
    user: str = ""
    token: str = ""
    api_token: str = ""
    web_url: str = ""

    def stream_url(self) -> str:
        return f"{self.url}/users/{self.user}/stream"

    def open_url(self) -> str:
        """What "Open notifier" opens: ``web_url``, the web app, else the feed."""
        if self.web_url:
            return self.web_url
        if not self.url:
            return ""
        if self.api_token:
            return f"{self.url}/"
        return f"{self.url}/feeds/{self.user}.atom?token={self.token}"


@dataclass(frozen=True)
class NotificationSettings:
    app_name: str = "notifier"
    burst: int = 5
    burst_window: float = 10.0
    expire_timeout: int = -1
    do_not_disturb: bool = False
    icon_cache: int = 200


@dataclass(frozen=True)
class BusSettings:
    endpoints: tuple[str, ...] = ()
    filters: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DesktopConfig:
    mode: str = "server"
    server: ServerSettings = field(default_factory=ServerSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    path: str = ""


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def default_path() -> Path:
    return config_home() / "notifier" / "desktop.toml"


#: key: (type, check or None); a check returns what is wrong, or None
_SERVER = {"url": str, "user": str, "token": str, "api_token": str, "web_url": str}
_NOTIFICATIONS = {"app_name": str, "burst": int, "burst_window": (int, float),
                  "expire_timeout": int, "do_not_disturb": bool, "icon_cache": int}
_BUS = {"endpoints": list, "filters": list}
_TABLES = {"server": _SERVER, "notifications": _NOTIFICATIONS, "bus": _BUS}
_TOP = {"mode": str, **{name: dict for name in _TABLES}}


def _unknown(where: str, key: str, known: list[str]) -> str:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(known)})"
    return f"{where}unknown key {key!r}{hint}"


def _typed(where: str, key: str, value: Any, kind: Any) -> str | None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return f"{where}{key} must be {' or '.join(k.__name__ for k in kinds)}, not a boolean"
    if not isinstance(value, kinds):
        return (f"{where}{key} must be {' or '.join(k.__name__ for k in kinds)}, "
                f"not {type(value).__name__}")
    return None


def _check_table(name: str, table: dict[str, Any], spec: dict[str, Any],
                 problems: list[str]) -> dict[str, Any]:
    good = {}
    for key, value in table.items():
        if key not in spec:
            problems.append(_unknown(f"[{name}] ", key, sorted(spec)))
            continue
        wrong = _typed(f"[{name}] ", key, value, spec[key])
        if wrong:
            problems.append(wrong)
        else:
            good[key] = value
    return good


def _web(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def parse(data: dict[str, Any], path: str) -> DesktopConfig:
    """Check ``data`` (the file's TOML) and make the settings; ConfigError lists problems."""
    problems: list[str] = []
    for key, value in data.items():
        if key not in _TOP:
            problems.append(_unknown("", key, sorted(_TOP)))
        elif (wrong := _typed("", key, value, _TOP[key])):
            problems.append(wrong)
    mode = data.get("mode", "server")
    if isinstance(mode, str) and mode not in MODES:
        problems.append(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    tables = {name: _check_table(name, data[name], spec, problems)
              if isinstance(data.get(name), dict) else {} for name, spec in _TABLES.items()}
    server = ServerSettings(**tables["server"])
    server = ServerSettings(**{**server.__dict__, "url": server.url.rstrip("/")})
    notifications = NotificationSettings(**tables["notifications"])
    bus = tables["bus"]
    endpoints = tuple(bus.get("endpoints", ()))
    filters = tuple(bus.get("filters", ()))
    if any(not isinstance(e, str) for e in endpoints):
        problems.append("[bus] endpoints must be a list of addresses (strings)")
    if any(not isinstance(f, dict) for f in filters):
        problems.append("[bus] filters must be tables ([[bus.filters]])")
    if mode == "server":
        if not server.url or not _web(server.url):
            problems.append(f"[server] url must be an http or https address, not {server.url!r}"
                            if server.url else "[server] url is missing")
        if not server.user:
            problems.append("[server] user is missing")
        elif "/" in server.user:
            problems.append(f"[server] user must be a user name, not {server.user!r}")
        if not server.token:
            problems.append("[server] token is missing (a read token, or the feed token)")
        if server.web_url and not _web(server.web_url):
            problems.append(f"[server] web_url must be an http or https address, "
                            f"not {server.web_url!r}")
    elif mode == "bus" and not endpoints:
        problems.append("[bus] endpoints is missing: mode 'bus' subscribes to them")
    if not 1 <= notifications.burst <= 1000:
        problems.append(f"[notifications] burst must be 1 to 1000, not {notifications.burst}")
    if not 1 <= notifications.burst_window <= 3600:
        problems.append("[notifications] burst_window must be 1 to 3600 seconds, "
                        f"not {notifications.burst_window}")
    if notifications.expire_timeout < -1:
        problems.append("[notifications] expire_timeout must be -1 or more milliseconds")
    if not 0 <= notifications.icon_cache <= 10000:
        problems.append("[notifications] icon_cache must be 0 to 10000 icons, "
                        f"not {notifications.icon_cache}")
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return DesktopConfig(mode=str(mode), server=server, notifications=notifications,
                         bus=BusSettings(endpoints, filters), path=path)


def load(path: Path | None = None) -> DesktopConfig:
    """Read and check the config file (``path``, else the default one)."""
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; write it with 'notifier-desktop setup'") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse(data, str(path))


def write(path: Path, url: str, user: str, token: str, api_token: str = "") -> None:
    """Write a new config file (mode 0600: it holds tokens) from :data:`TEMPLATE`."""
    # JSON's string escapes are TOML's: any text is written as one basic string
    text = TEMPLATE.format(url=json.dumps(url.rstrip("/")), user=json.dumps(user),
                           token=json.dumps(token), api_token=json.dumps(api_token))
    parse(tomllib.loads(text), str(path))  # refuse to write what would not load
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that was there before keeps no wider mode
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
