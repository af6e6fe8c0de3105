"""FASJSON as a source of user profiles, through ``fasjson-client``.

The client is built on first use, since building it fetches the API spec
from ``[fasjson] url``. ``auth = "gssapi"`` authenticates with Kerberos
(a ticket or keytab must be available); ``auth = "none"`` sends plain
requests, for instances that allow it and for tests.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from ..errors import ConfigError, DirectoryError

AUTH_MODES = ("gssapi", "none")
#: seconds to wait for one FASJSON answer
TIMEOUT = 10.0

_IRC_URI = re.compile(r"^irc:/{1,2}(?:[^/]*/)?([^/?#]+)$")


def irc_nick(entry: str) -> str | None:
    """The IRC nick in a FASJSON ``ircnicks`` entry, or None if it is not IRC.

    FASJSON keeps chat addresses as URIs (``irc:/nick``,
    ``irc://irc.libera.chat/nick``, ``matrix://server/user``); older
    entries are bare nicks.
    """
    if ":" not in entry:
        return entry or None
    match = _IRC_URI.match(entry)
    return match.group(1) if match else None


def profile_from_fasjson(result: dict[str, Any], name: str) -> dict[str, Any]:
    """Turn a FASJSON user (``get_user`` result) into a notifier user profile.

    FASJSON's ``get_user`` does not list groups, so ``groups`` is empty;
    chat addresses that are not IRC are left out of ``ircnicks``.
    """
    nicks = [irc_nick(str(entry)) for entry in result.get("ircnicks") or []]
    return {
        "name": result.get("username") or name,
        "emails": [str(e) for e in result.get("emails") or []],
        "ircnicks": list(dict.fromkeys(n for n in nicks if n)),
        "groups": [],
        "delivery": None,
    }


class FasjsonSource:
    """Looks users up in FASJSON."""

    def __init__(self, url: str, auth: str = "gssapi", timeout: float = TIMEOUT):
        if auth not in AUTH_MODES:
            raise ConfigError(f"[fasjson] auth must be one of {', '.join(AUTH_MODES)}, "
                              f"not {auth!r}")
        self.url = url
        self.auth = auth
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    from fasjson_client import Client
                    from fasjson_client.errors import ClientError
                except ImportError as exc:
                    raise ConfigError("[fasjson] url is set but fasjson-client is not "
                                      "installed (install notifier[fasjson])") from exc
                try:
                    self._client = Client(self.url, auth=self.auth == "gssapi")
                except ClientError as exc:
                    raise DirectoryError(f"FASJSON at {self.url}: {exc}") from exc
            return self._client

    def fetch(self, name: str) -> dict[str, Any] | None:
        """The profile of ``name`` (see :func:`profile_from_fasjson`), None if unknown.

        Raises :class:`DirectoryError` when FASJSON cannot be asked.
        """
        from fasjson_client.errors import APIError
        from requests.exceptions import RequestException

        client = self._get_client()
        try:
            response = client.get_user(username=name,
                                       _request_options={"timeout": self.timeout})
        except APIError as exc:
            if exc.code == 404:
                return None
            raise DirectoryError(f"FASJSON at {self.url}: looking up {name!r} failed: "
                                 f"HTTP {exc.code} {exc}") from exc
        except RequestException as exc:
            raise DirectoryError(f"FASJSON at {self.url}: looking up {name!r} failed: "
                                 f"{exc}") from exc
        result = response.result
        if not isinstance(result, dict):
            raise DirectoryError(f"FASJSON at {self.url}: the answer for {name!r} is not "
                                 f"a user object")
        return profile_from_fasjson(result, name)
