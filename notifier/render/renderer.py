"""The render stage: a described message, a user and a destination in; a Notification out.

What each destination gets in ``Notification.content``:

* ``email``: ``subject`` (one line), ``text``, ``html``; the extra headers
  (see :mod:`notifier.render.headers`) go in ``Notification.headers``. On
  the other destinations ``headers`` only holds ``X-Notifier-Package`` (the
  message's first package), which digests group by.
* ``irc``: ``line``: one line of at most 450 bytes of UTF-8 (less when the
  IRC backend declares a smaller ``max_length``), with the template's colour
  codes and none from the content.
* ``rss``: ``title`` (one line) and ``content`` (HTML).
* ``webpush``: ``title`` (one line) and ``body`` (plain text); the backend
  cuts the body to fit the push services' 4 KiB.
* ``matrix``: ``body`` (plain text) and ``html`` (the ``formatted_body``,
  ``org.matrix.custom.html``, content escaped).
* ``desktop``: ``summary`` (one line) and ``body``. When the desktop backend
  declares ``markup`` (``"pango"`` or ``"html"``), the body is rendered from
  ``desktop/body.html`` and is *markup*: the content in it is escaped here
  (``&``, ``<``, ``>`` and quotes), so the backend sends it as it is. With
  ``markup = None`` the body comes from ``desktop/body.txt`` as plain text,
  cut to the backend's ``max_length`` if it has one.

Message content is only ever data for the templates: a summary containing
``{{ 7*7 }}`` is printed as those characters. Links that are not http(s)
URLs are dropped (``message.link`` becomes ``None``), so no template can
produce a ``javascript:`` link.

The template context is ``message`` (the described message, with every key
present), ``envelope`` (the raw bus message), ``user``, ``rules`` (names of
the rules that matched), ``destination``, ``address``, ``base_url``,
``timestamp`` (when the message was sent, Unix time, or ``None``; the ``utc``
filter formats it), ``unsubscribe_url`` (switches off the first rule;
``None`` with no rule) and ``feed_url`` (the user's Atom feed, with their
feed token; ``None`` without one). A mail's body templates also get
``subject``: the Subject exactly as sent (one line, cut to length), which
``email/body.html`` and ``digest/body.html`` use as the HTML ``<title>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from markupsafe import escape

from ..backends.base import Backend
from ..config import Config
from ..errors import ConfigError, InputError
from ..notification import Notification
from ..users import artifacts
from . import digest as digest_mod
from . import text
from .headers import PACKAGE_HEADER, EmailHeaders
from .templates import TemplateSet

#: every key of a described message, with the value used when it is missing
MESSAGE_DEFAULTS: dict[str, Any] = {
    "msg_id": None, "topic": "", "app": "", "summary": "", "link": None, "icon": None,
    "usernames": (), "agent": None, "packages": (), "groups": (), "severity": "info",
}
USER_DEFAULTS: dict[str, Any] = {
    "emails": (), "ircnicks": (), "groups": (), "delivery": None, "feed_token": None,
}
DIGEST_TOPIC = "notifier.digest"
#: context names that differ between the recipients of one message
PER_RECIPIENT = frozenset({"user", "address", "rules", "unsubscribe_url", "feed_url"})
_MARKUP = frozenset({"html", "pango"})


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    return value if scheme in ("http", "https") else None


#: turns what a template produced into what the destination takes
Clean = Callable[[str], str]
#: one part of a destination: content key, template folder, template file, clean-up
Part = tuple[str, str, str, Clean]


def _mail_plan(folder: str) -> list[Part]:
    return [("subject", folder, "subject.txt", text.single_line),
            ("text", folder, "body.txt", text.plain_text),
            ("html", folder, "body.html", text.markup_text)]


_DIGEST_PLAN = _mail_plan("digest")


def _lines(clean: Clean) -> Clean:
    return lambda value: text.single_line(clean(value), None)


def _cut(clean: Clean, max_bytes: int) -> Clean:
    return lambda value: text.truncate_utf8(clean(value), max_bytes)


class Renderer:
    """Renders notifications with the installation's templates.

    ``secret`` signs the unsubscribe links (see :mod:`notifier.render.tokens`);
    the service passes its per-installation secret. ``backends`` maps a
    destination to the backend class whose ``max_length``, ``single_line`` and
    ``markup`` apply; by default the class is looked up in the backend
    registry when that destination is first rendered.

    Templates are compiled here, once; a template mistake found then or while
    rendering is a :class:`~notifier.errors.ConfigError` naming the file and line.
    """

    def __init__(self, config: Config, *, secret: bytes,
                 backends: Mapping[str, type[Backend]] | None = None):
        if not isinstance(secret, bytes) or not secret:
            raise ConfigError("the unsubscribe secret must be non-empty bytes")
        self.config = config
        self.base_url = config.http.public_url()
        self.templates = TemplateSet(config.templates_dir)
        self.headers = EmailHeaders(config.email.list_id, self.base_url, secret)
        self._backends = dict(backends or {})
        self._plans: dict[str, list[Part]] = {}
        self._shareable: dict[tuple[str, str], bool] = {}

    # -- what each destination gets -------------------------------------------

    def _backend(self, destination: str) -> type[Backend]:
        if destination not in self._backends:
            from ..backends.registry import backend_class

            try:
                self._backends[destination] = backend_class(destination)
            except ImportError as exc:
                raise ConfigError(f"destination '{destination}': cannot load its backend to "
                                  f"read what it can display: {exc}") from exc
        return self._backends[destination]

    def _plan(self, destination: str) -> list[Part]:
        """The parts rendered for ``destination``, with the backend's limits applied."""
        plan = self._plans.get(destination)
        if plan is not None:
            return plan
        if destination == "email":
            plan = _mail_plan("email")
        elif destination == "rss":
            plan = [("title", "rss", "title.txt", text.single_line),
                    ("content", "rss", "content.html", text.markup_text)]
        elif destination == "irc":
            limit = self._backend("irc").max_length
            max_bytes = min(text.IRC_MAX_BYTES, limit) if limit else text.IRC_MAX_BYTES
            plan = [("line", "irc", "line.txt", lambda value: text.irc_line(value, max_bytes))]
        elif destination == "desktop":
            backend = self._backend("desktop")
            if backend.markup in _MARKUP:
                # Markup is never cut short: a cut could leave a tag open.
                body: Part = ("body", "desktop", "body.html", text.markup_text)
            elif backend.max_length:
                body = ("body", "desktop", "body.txt", _cut(text.plain_text,
                                                            backend.max_length))
            else:
                body = ("body", "desktop", "body.txt", text.plain_text)
            if backend.single_line:
                body = (*body[:3], _lines(body[3]))
            plan = [("summary", "desktop", "summary.txt", text.single_line), body]
        elif destination == "webpush":
            plan = [("title", "webpush", "title.txt", text.single_line),
                    ("body", "webpush", "body.txt", text.plain_text)]
        elif destination == "matrix":
            plan = [("body", "matrix", "body.txt", text.plain_text),
                    ("html", "matrix", "body.html", text.markup_text)]
        else:
            raise ConfigError(f"no templates for destination '{destination}'; "
                              "known: desktop, email, irc, matrix, rss, webpush")
        self._plans[destination] = plan
        return plan

    def shareable(self, destination: str, app: str) -> bool:
        """Whether ``destination``'s templates for ``app`` read nothing about the recipient.

        Then every recipient of a message gets the same content there, and
        :meth:`render` renders it once per message (see its ``shared``).
        """
        key = (destination, app)
        known = self._shareable.get(key)
        if known is None:
            known = not any(self.templates.reads(self.templates.get(folder, part, app), name)
                            for _key, folder, part, _clean in self._plan(destination)
                            for name in PER_RECIPIENT)
            self._shareable[key] = known
        return known

    def _render_parts(self, plan: list[Part], app: str, context: dict[str, Any],
                      user: str, unsubscribe_rule: str | None) -> dict[str, str]:
        chosen = [(key, self.templates.get(folder, part, app), clean)
                  for key, folder, part, clean in plan]
        # Signing the link costs more than the rest of an IRC line: only when used.
        if "unsubscribe_url" not in context:
            wanted = unsubscribe_rule is not None and any(
                self.templates.reads(template, "unsubscribe_url") for _, template, _ in chosen)
            context["unsubscribe_url"] = (self.headers.unsubscribe_url(user, unsubscribe_rule)
                                          if wanted else None)
        content: dict[str, str] = {}
        for key, template, clean in chosen:
            content[key] = clean(self.templates.render(template, context))
            if key == "subject":
                # The bodies show the Subject as sent (an HTML <title> that differs
                # from the Subject is what spam filters score).
                context["subject"] = content[key]
        return content

    # -- one message --------------------------------------------------------

    def render(self, destination: str, described: Mapping[str, Any],
               envelope: Mapping[str, Any], user: Mapping[str, Any], rules: Sequence[str],
               address: str, shared: dict[str, Any] | None = None) -> Notification:
        """Render one message for one user on one destination.

        ``described`` comes from :meth:`notifier.meta.Describer.describe`,
        ``envelope`` is the raw bus message, ``rules`` names the rules that
        matched (the first one is what the unsubscribe link switches off) and
        ``address`` is where it goes (email address, IRC nick, user name).

        ``shared``, when given, is a dict kept for the recipients of this one
        message: content that reads nothing about the recipient (see
        :meth:`shareable`) is rendered for the first and kept there for the
        others.
        """
        plan = self._plan(destination)
        message = {**MESSAGE_DEFAULTS, **{k: v for k, v in described.items() if v is not None}}
        message["link"] = _http_url(message["link"])
        msg_id = message["msg_id"] or envelope.get("msg_id")
        if not msg_id:
            raise InputError(f"message on topic {message['topic']!r} has no msg_id")
        message["msg_id"] = msg_id = str(msg_id)
        user = self._user(user)
        name = user["name"]
        rules = list(rules)
        try:
            timestamp = float(envelope.get("timestamp") or 0.0)
        except (TypeError, ValueError) as exc:
            raise InputError(f"message {msg_id}: 'timestamp' is not a number: "
                             f"{envelope.get('timestamp')!r}") from exc
        app, topic = str(message["app"]), str(message["topic"])
        context: dict[str, Any] = {
            "message": message, "envelope": envelope, "user": user, "rules": rules,
            "destination": destination, "address": address, "base_url": self.base_url,
            "timestamp": timestamp or None, "feed_url": self._feed_url(user),
        }
        # Every artifact by key, packages first: a container's mail threads and is
        # grouped in digests as a package's is.
        packages = message["packages"]
        packages = [packages] if isinstance(packages, str) else [str(p) for p in packages]
        packages += [k for k in artifacts.record_keys({**message, "packages": ()})]
        if destination == "email":
            url = self.headers.unsubscribe_url(name, rules[0]) if rules else None
            context["unsubscribe_url"] = url
            headers = self.headers.for_message(name, msg_id, topic, app, packages, rules, url)
        else:
            # Not sent anywhere: it tells a later digest which package this was about.
            headers = {PACKAGE_HEADER: text.single_line(packages[0], None)} if packages else {}
        if shared is not None and self.shareable(destination, app):
            content = shared.get(destination)
            if content is None:
                content = shared[destination] = self._render_parts(plan, app, context, name,
                                                                   None)
            content = dict(content)
        else:
            content = self._render_parts(plan, app, context, name, rules[0] if rules else None)
        return Notification(
            user=name, destination=destination, address=address, msg_id=msg_id, topic=topic,
            app=app, content=content, rules=tuple(rules), link=message["link"],
            icon=message["icon"] if isinstance(message["icon"], str) else None,
            severity=str(message["severity"]), timestamp=timestamp, headers=headers)

    def _feed_url(self, user: Mapping[str, Any]) -> str | None:
        token = user.get("feed_token")
        if not token:
            return None
        return self.config.http.feed_url(user["name"], str(token))

    @staticmethod
    def _user(user: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(user.get("name"), str) or not user["name"]:
            raise InputError(f"user record without a 'name': {dict(user)!r}")
        return {**USER_DEFAULTS, **user}

    # -- digests ------------------------------------------------------------

    def render_digest(self, destination: str, user: Mapping[str, Any],
                      items: Sequence[Notification], address: str) -> Notification:
        """One notification that sums up ``items``, grouped by app then package, newest first.

        ``items`` are notifications held back for the digest. By email the
        digest has a subject, a text and an HTML part from the ``digest/``
        templates. Elsewhere it is made from the subject and the text: the
        IRC line is the subject; a feed entry has the subject as title and the
        text as preformatted content; a desktop notification has the subject
        as summary and the text as body (escaped when the body is markup).

        The unsubscribe link is only there when every item was sent for the
        same first rule. The ``msg_id`` is derived from the items, so rendering
        the same digest again gives the same ``Message-ID``.
        """
        if not items:
            raise InputError("a digest needs at least one notification")
        plan = self._plan(destination)  # checks the destination exists
        user = self._user(user)
        name = user["name"]
        rules = list(dict.fromkeys(rule for item in items for rule in item.rules))
        first_rules = {item.rules[0] if item.rules else None for item in items}
        single_rule = first_rules.pop() if len(first_rules) == 1 else None
        url = self.headers.unsubscribe_url(name, single_rule) if single_rule else None
        newest = max(item.timestamp for item in items)
        digest = {
            "total": len(items), "apps": digest_mod.group_items(items),
            "first": min(item.timestamp for item in items), "last": newest,
        }
        context = {
            "digest": digest, "user": user, "rules": rules, "destination": destination,
            "address": address, "base_url": self.base_url, "unsubscribe_url": url,
            "feed_url": self._feed_url(user),
        }
        keys = "\x00".join(sorted(item.key for item in items))
        msg_id = "digest-" + hashlib.sha256(keys.encode("utf-8")).hexdigest()[:32]
        headers: dict[str, str] = {}
        if destination == "email":
            content = self._render_parts(_DIGEST_PLAN, "", context, name, single_rule)
            headers = {"Message-ID": self.headers.message_id(name, msg_id),
                       **self.headers.common(rules, url),
                       "X-Notifier-Topic": DIGEST_TOPIC,
                       "X-Notifier-Digest": str(len(items))}
        else:
            mail = self._render_parts(_DIGEST_PLAN[:2], "", context, name, single_rule)
            content = self._digest_content(destination, plan, mail["subject"], mail["text"])
        return Notification(
            user=name, destination=destination, address=address, msg_id=msg_id,
            topic=DIGEST_TOPIC, app="notifier", content=content, rules=tuple(rules),
            severity=digest_mod.highest_severity(items), timestamp=newest, headers=headers)

    def _digest_content(self, destination: str, plan: list[Part], subject: str,
                        body: str) -> dict[str, str]:
        if destination == "irc":
            (_key, _folder, _part, clean), = plan
            return {"line": clean(text.irc_data(subject))}
        if destination == "rss":
            return {"title": subject, "content": f"<pre>{escape(body)}</pre>"}
        if destination == "webpush":
            return {"title": subject, "body": body}
        if destination == "matrix":
            return {"body": f"{subject}\n\n{body}",
                    "html": f"<b>{escape(subject)}</b><br><pre>{escape(body)}</pre>"}
        # desktop: the body's own clean-up applies (markup, length, one line)
        _key, _folder, part, clean = plan[1]
        return {"summary": subject,
                "body": clean(str(escape(body)) if part.endswith(".html") else body)}
