"""fedmsg.meta processors as a source of metadata.

fedmsg.meta turns fedmsg messages into text through processors registered
on the ``fedmsg.meta`` entry point; ``fedmsg_meta_fedora_infrastructure``
ships one per Fedora application. They are loaded and built once per
:class:`ProcessorSource`, with our own list rather than fedmsg.meta's
process-wide one, and the processor for a topic is looked up once and
remembered.

The processors get a config with no FAS or FASJSON credentials, so their
username lookups answer from the message alone, and every call runs inside
:func:`~notifier.meta.offline.offline`, so the few that would fetch
something (a Bodhi update for a Taskotron result, for one) fail instead;
each blocked attempt is logged as a warning.

Fields, from the processor methods that fedmsg.meta's ``msg2*`` functions
call: ``app`` = the processor's name, lowercased; ``summary`` = subtitle;
``link``, ``icon``, ``usernames``, ``packages`` as named; ``agent`` = the
processor's ``agent`` or, when it has none, the only username (fedmsg.meta
picks one of several at random; we pick none). fedmsg.meta knows nothing of
groups or severity.

fedmsg.meta knows packages only: a push to dist-git's other namespaces
(``commit.namespace`` ``container``, ``modules``, ``flatpaks``) has no
package, and its repository (``commit.repo``) is reported here as the
container, module or flatpak it is, as fedora-messaging's schema for those
pushes does.
"""

from __future__ import annotations

import logging
import warnings
from importlib.metadata import entry_points
from typing import Any

from ..config import Config
from .base import Found
from .offline import offline

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fedmsg.meta"
_CACHE_SIZE = 4096
# fedmsg_meta_fedora_infrastructure logs its username lookups here.
_FAS_LOGGER = "moksha.hub"
# Our field -> the processor method.
_METHODS = (("summary", "subtitle"), ("link", "link"), ("icon", "icon"),
            ("usernames", "usernames"), ("packages", "packages"))
#: dist-git namespace -> the description's list of that kind (rpms are fedmsg.meta's packages)
_NAMESPACES = {"container": "containers", "containers": "containers", "modules": "modules",
               "flatpaks": "flatpaks"}


class _QuietFasCache(logging.Filter):
    """Turns the "no FAS cache" warnings into debug records.

    With no credentials (on purpose), every username lookup warns that it
    has no cache to consult; that is expected here, not news.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(
                ("No previous fas", "No fas_credentials", "No python-fedora")):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def processor_config(config: Config) -> dict[str, Any]:
    """The fedmsg config handed to processors: our topic prefix, no FAS lookups."""
    prefix = config.topic_prefix.strip(".")
    return {
        "topic_prefix": prefix,
        "environment": config.environment,
        # What fedmsg.config derives from topic_prefix.
        "topic_prefix_re": prefix.replace(".", r"\.") + r"\.[^\W\d_]+",
        # No fasjson and no fas_credentials: nick2fas/email2fas answer from
        # the message instead of downloading the user list.
        "fasjson": False,
    }


class ProcessorSource:
    """Describes fedmsg messages with the installed fedmsg.meta processors.

    Raises ImportError when fedmsg is not installed.
    """

    name = "fedmsg.meta"

    def __init__(self, config: Config):
        self._config = processor_config(config)
        with warnings.catch_warnings(), offline() as attempts:
            # fedmsg and its plugins import deprecated pyOpenSSL and pkg_resources APIs.
            warnings.simplefilter("ignore", DeprecationWarning)
            import fedmsg.meta
            from fedmsg.meta.base import BaseProcessor

            self._processors = []
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    self._processors.append(entry.load()(fedmsg.meta._, **self._config))
                except Exception as exc:  # a plugin failing at import or construction
                    # mailman3's module reads the host's fedmsg.d config at import.
                    log.debug("fedmsg.meta processor %s (%s) is not used: %s",
                              entry.name, entry.value, exc)
        if attempts:
            log.warning("loading fedmsg.meta processors tried to reach the network "
                        "(blocked): %s", "; ".join(attempts))
        # Processors that choose by topic alone (all known ones) can be cached by topic.
        self._by_topic_only = all(type(p).handle_msg is BaseProcessor.handle_msg
                                  for p in self._processors)
        self._topic_cache: dict[str, Any] = {}
        self._fas_log = logging.getLogger(_FAS_LOGGER)

    def __bool__(self) -> bool:
        return bool(self._processors)

    def processor_for(self, envelope: dict[str, Any]) -> Any:
        """The processor that handles ``envelope``, or None (fedmsg.meta's default one)."""
        if not self._by_topic_only:
            return self._find(envelope)
        topic = envelope["topic"]
        try:
            return self._topic_cache[topic]
        except KeyError:
            found = self._find({"topic": topic})
            if len(self._topic_cache) < _CACHE_SIZE:
                self._topic_cache[topic] = found
            return found

    def _find(self, envelope: dict[str, Any]) -> Any:
        for processor in self._processors:
            if processor.handle_msg(envelope, **self._config) is not None:
                return processor
        return None

    def describe(self, envelope: dict[str, Any]) -> Found | None:
        processor = self.processor_for(envelope)
        if processor is None:
            return None
        name = processor.__name__
        fields: dict[str, Any] = {"app": name.lower()}
        failed = []
        quiet = _QuietFasCache()
        self._fas_log.addFilter(quiet)
        try:
            with offline() as attempts:
                for field, method in _METHODS:
                    try:
                        fields[field] = getattr(processor, method)(envelope, **self._config)
                    except Exception as exc:  # processors break on bodies they did not expect
                        failed.append(field)
                        log.debug("fedmsg.meta %s.%s failed on %s: %r", name, method,
                                  envelope["msg_id"], exc)
                try:
                    if processor.agent is not NotImplemented:
                        fields["agent"] = processor.agent(envelope, **self._config)
                    elif fields.get("usernames") and len(fields["usernames"]) == 1:
                        fields["agent"] = next(iter(fields["usernames"]))
                except Exception as exc:
                    log.debug("fedmsg.meta %s.agent failed on %s: %r", name,
                              envelope["msg_id"], exc)
        finally:
            self._fas_log.removeFilter(quiet)
        kind, repo = _dist_git_push(envelope)
        if kind is not None:
            fields[kind] = [repo]
        if attempts:
            log.warning("fedmsg.meta processor %s tried to reach the network describing %s "
                        "on %s (blocked): %s", name, envelope["msg_id"], envelope["topic"],
                        "; ".join(attempts))
        return Found(fields, understood="summary" not in failed)


def _dist_git_push(envelope: dict[str, Any]) -> tuple[str | None, str]:
    """``(list, repository)`` of a push to dist-git's container, modules or flatpaks
    namespace; ``(None, "")`` for any other message."""
    body = envelope.get("msg")
    commit = body.get("commit") if isinstance(body, dict) else None
    if not isinstance(commit, dict):
        return None, ""
    namespace, repo = commit.get("namespace"), commit.get("repo")
    kind = _NAMESPACES.get(namespace) if isinstance(namespace, str) else None
    if kind is None or not isinstance(repo, str) or not repo:
        return None, ""
    return kind, repo
