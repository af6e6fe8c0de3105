"""``mode = "bus"``: the message bus itself, as fedmsg-notify did, filtered on this machine.

The app subscribes to ``[bus] endpoints`` and keeps the messages that one of
``[[bus.filters]]`` matches. Each filter is a rule in the rules' own
vocabulary (``track`` and ``filters``, as ``notifier rules import`` reads
them; ``user`` and ``destinations`` are implied), checked when the app
starts, and matched with the service's own matcher against the message as
the service describes it (with the default ``[meta]``). Kinds that need the
service's package owners (``artifacts-owned``, ``artifacts-group-owned``)
know no owners here, and match nothing.

The bus keeps no history: what is published while the app is not listening
is not seen (the server mode resumes; this one cannot).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

# The one place a client uses the service's internals: the bus client, and the
# describer and matcher that give filters the rules' vocabulary (see pyproject.toml).
from ...bus.decoding import loads_checked
from ...bus.transport import MalformedFrames
from ...bus.transports import open_subscriber
from ...config import config_from_dict
from ...errors import NotifierError
from ...meta.describer import Describer
from ...rules.matcher import Matcher
from ...rules.validation import parse_rule
from .config import BusSettings, ConfigError

log = logging.getLogger(__name__)

#: the local "user" the filters belong to
USER = "me"


def matcher_for(settings: BusSettings, path: str) -> Matcher:
    """The filters as rules; ConfigError naming the file and filter for a bad one."""
    rules, problems = [], []
    for index, data in enumerate(settings.filters):
        document = {"name": f"filter {index + 1}", **data, "user": USER,
                    "destinations": ["desktop"]}
        try:
            rules.append(parse_rule(document, source=f"{path}: [[bus.filters]]", index=index + 1,
                                    destinations={"desktop"}))
        except NotifierError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return Matcher(rules)


class BusReader:
    """Listens to the bus on a thread; ``on_event(n, item)`` for each message a filter
    matches (``item`` shaped like the server's stream items), ``on_state`` as the
    subscription comes and goes."""

    def __init__(self, settings: BusSettings, path: str, *,
                 on_event: Callable[[int, dict[str, Any]], None],
                 on_state: Callable[[bool, str], None]):
        self.settings = settings
        self.matcher = matcher_for(settings, path)
        self.describer = Describer(config_from_dict({}, "<bus mode defaults>"))
        self.on_event = on_event
        self.on_state = on_state
        self._numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus", daemon=True)

    def start(self) -> BusReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def reconnect(self) -> None:
        pass  # ZeroMQ reconnects by itself

    def _run(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                with open_subscriber(list(self.settings.endpoints)) as subscriber:
                    self.on_state(True, "subscribed")
                    delay = 1.0
                    while not self._stopping.is_set():
                        try:
                            got = subscriber.recv(timeout=0.5)
                        except MalformedFrames:
                            continue
                        if got is not None:
                            self._handle(got[1])
            except NotifierError as exc:
                self.on_state(False, str(exc))
                self._stopping.wait(delay)
                delay = min(delay * 2, 60.0)

    def _handle(self, payload: bytes) -> None:
        try:
            envelope = loads_checked(payload)
            record = self.describer.describe(envelope)
        except (NotifierError, ValueError) as exc:
            log.debug("a message off the bus was skipped: %s", exc)
            return
        recipients = self.matcher.match(record)
        if not recipients:
            return
        rules = sorted({name for r in recipients for name in r.rules})
        app = record.get("app") or ""
        summary = record.get("summary") or record["topic"]
        self.on_event(next(self._numbers), {
            "msg_id": record.get("msg_id"), "topic": record["topic"], "app": app,
            "summary": f"{app}: {summary}" if app else summary, "body": "",
            "link": record.get("link"), "icon": record.get("icon"),
            "severity": record.get("severity") or "info", "timestamp": time.time(),
            "rules": rules, "local": True})
