"""Email headers computed at render time, so the email backend only builds MIME.

* ``Message-ID``: ``<{h}@{list id}>`` where ``h`` is the first 32 hex digits
  of SHA-256 over the user name and the bus ``msg_id``. The same message sent
  again to the same user (a retry, a replay) keeps its id, so mail servers and
  clients can drop the duplicate; other users get other ids.
* ``In-Reply-To`` and ``References``: a thread root ``<thread.{h}@{list id}>``
  with ``h`` over the user, the lowercased app and the message's first
  package. Mails about the same app and package then show as one thread. The
  root is never sent as a mail of its own; clients thread on the shared
  reference anyway. A message without packages starts no thread.
* ``List-Id`` (RFC 2919) from ``[email] list_id``.
* ``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
  (RFC 8058): ``<{base_url}/unsubscribe/{token}>``, where the token switches
  off the *first* rule that matched (see :mod:`notifier.render.tokens`). With
  no rule there is nothing to switch off, and no such header.
* ``X-Notifier-Rule`` (every rule that matched, comma-separated),
  ``X-Notifier-Topic``, ``X-Notifier-App``, ``X-Notifier-Package`` (the
  package the mail is threaded under) for filtering in mail clients.
* ``Auto-Submitted: auto-generated`` (RFC 3834) so vacation responders stay quiet.

Every value passes through :func:`~notifier.render.text.single_line`, so no
content can start a header of its own. Values are text as the reader should
see it: the email backend encodes them for the wire, and encodes any text
that merely looks like an RFC 2047 encoded word, so it is shown as written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ..errors import ConfigError
from .text import single_line
from .tokens import unsubscribe_token

# RFC 5322 dot-atom: what may stand right of the "@" in a Message-ID.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_BRACKETED = re.compile(r"<([^<>]*)>")
#: the package a notification is about (its message's first package)
PACKAGE_HEADER = "X-Notifier-Package"
# Header values are not cut short: the email backend folds a long one at 78 characters,
# with encoded words of at most 75 (see notifier.backends.mailheaders).
_NO_LIMIT = None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


class EmailHeaders:
    """Builds the extra headers of one installation's mails.

    ``list_id`` is ``[email] list_id``: either a bare id such as
    ``notifications.example.org`` or a full header value such as
    ``Example notifications <notifications.example.org>``.
    """

    def __init__(self, list_id: str, base_url: str, secret: bytes):
        match = _BRACKETED.search(list_id)
        self.domain = (match.group(1) if match else list_id).strip()
        if not _DOT_ATOM.fullmatch(self.domain):
            raise ConfigError(f"'email.list_id' = {list_id!r}: the list id must look like "
                              "a host name, e.g. notifications.example.org")
        self.list_id = single_line(list_id if match else f"<{self.domain}>", _NO_LIMIT)
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    def message_id(self, user: str, msg_id: str) -> str:
        """The stable ``Message-ID`` of the mail about ``msg_id`` to ``user``."""
        return f"<{_digest(user, msg_id)}@{self.domain}>"

    def thread_id(self, user: str, app: str, package: str) -> str:
        """The id of the thread root for ``user`` about ``package`` in ``app``."""
        return f"<thread.{_digest(user, app.lower(), package)}@{self.domain}>"

    def unsubscribe_url(self, user: str, rule: str) -> str:
        """The link that switches off ``rule`` of ``user``."""
        return f"{self.base_url}/unsubscribe/{unsubscribe_token(self.secret, user, rule)}"

    def for_message(self, user: str, msg_id: str, topic: str, app: str,
                    packages: Sequence[str], rules: Sequence[str],
                    unsubscribe_url: str | None) -> dict[str, str]:
        """Every extra header of the mail about one message.

        ``unsubscribe_url`` is :meth:`unsubscribe_url` for the first rule, or
        ``None`` when no rule matched.
        """
        headers = {"Message-ID": self.message_id(user, msg_id)}
        if packages:
            root = self.thread_id(user, app, packages[0])
            headers["In-Reply-To"] = root
            headers["References"] = root
        headers.update(self.common(rules, unsubscribe_url))
        headers["X-Notifier-Topic"] = single_line(topic, _NO_LIMIT)
        headers["X-Notifier-App"] = single_line(app, _NO_LIMIT)
        if packages:
            headers[PACKAGE_HEADER] = single_line(packages[0], _NO_LIMIT)
        return headers

    def common(self, rules: Sequence[str], unsubscribe_url: str | None) -> dict[str, str]:
        """The headers every mail carries: list, unsubscribe, rules, auto-submitted."""
        headers = {"List-Id": self.list_id}
        if unsubscribe_url is not None:
            headers["List-Unsubscribe"] = f"<{single_line(unsubscribe_url, _NO_LIMIT)}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if rules:
            headers["X-Notifier-Rule"] = single_line(", ".join(rules), _NO_LIMIT)
        headers["Auto-Submitted"] = "auto-generated"
        return headers
