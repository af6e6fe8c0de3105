"""The :class:`Describer`: asks the metadata sources in turn and merges their answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..config import Config
from .base import DESCRIBED, Found, Source
from .generic import GenericSource
from .logform import LogSource
from .mappings import MappingSource
from .normalize import normalize
from .processors import ProcessorSource
from .schemas import SchemaSource, schemas_installed
from .topics import TopicNames

log = logging.getLogger(__name__)


def _texts(values: Any) -> list[str]:
    if not values:
        return []
    if isinstance(values, str):
        values = (values,)
    return sorted({str(v) for v in values if v is not None and v != ""})


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


class Describer:
    """Describes bus messages: what happened, where, who and what it concerns.

    Sources, best first:

    1. the ``[[meta.mappings]]`` of the config;
    2. the log form, ``{"log": text}``, whose summary is the text;
    3. fedora-messaging schema classes (``[meta] use_fedora_messaging``);
    4. fedmsg.meta processors (``[meta] use_fedmsg_meta``);
    5. the generic fallback: application from the topic, summary from the
       body, severity ``info`` unless a header says otherwise.

    Merge rule: each field takes the first value a source gives for it;
    None, an empty string and an empty list count as not given, so a later
    source fills it. Once a source *understands* the message (the log form,
    a schema class written for it, or a fedmsg.meta processor whose subtitle
    worked), the sources after it are skipped, except the generic fallback,
    which always fills what is still missing. Mappings never stop the chain.

    A source that fails on a message is logged (warning) and skipped. The
    fedmsg.meta processors and schema table are built once, here; building a
    Describer with fedmsg.meta enabled takes about half a second, describing
    a message microseconds. Nothing here touches the network.

    ``schemas`` (schema name -> fedora-messaging class) replaces the classes
    found on the ``fedora.messages`` entry point.
    """

    def __init__(self, config: Config, *, schemas: Mapping[str, type] | None = None):
        self.config = config
        topics = TopicNames(config.topic_prefix, config.environment)
        sources: list[Source] = []
        mappings = MappingSource(config.meta.mappings, ", ".join(config.sources) or "config")
        if mappings:
            sources.append(mappings)
        sources.append(LogSource())
        # Importing fedora-messaging takes seconds (jsonschema): only when a schema is there.
        wanted = bool(schemas) if schemas is not None else schemas_installed()
        if config.meta.use_fedora_messaging and wanted:
            try:
                schema_source = SchemaSource(schemas)
            except ImportError as exc:
                log.debug("fedora-messaging is not installed, its schemas are not used: %s", exc)
            else:
                if schema_source:
                    sources.append(schema_source)
        if config.meta.use_fedmsg_meta:
            try:
                processor_source = ProcessorSource(config)
            except ImportError as exc:
                log.debug("fedmsg is not installed, fedmsg.meta is not used: %s", exc)
            else:
                if processor_source:
                    sources.append(processor_source)
        self._sources = tuple(sources)
        self._schemas = next((s for s in sources if isinstance(s, SchemaSource)), None)
        self._generic = GenericSource(topics)

    @property
    def sources(self) -> tuple[str, ...]:
        """The names of the sources in use, best first (the generic fallback last)."""
        return (*(s.name for s in self._sources), self._generic.name)

    def describe(self, message: dict[str, Any]) -> dict[str, Any]:
        """Describe ``message``, in any of the forms :func:`normalize` accepts.

        Returns a dict with exactly the keys of :data:`~notifier.meta.base.FIELDS`:
        ``msg_id``, ``topic``, ``app``, ``summary``, ``link``, ``icon``,
        ``usernames`` (sorted), ``agent``, the artifacts it concerns by kind
        (:mod:`notifier.users.artifacts`): ``packages``, ``containers``,
        ``modules`` and ``flatpaks`` (each sorted, bare names), ``groups``
        (sorted) and ``severity`` (debug, info, warning or error). Raises
        :class:`~notifier.errors.InputError` when ``message`` is not a message.
        """
        envelope = normalize(message)
        fields: dict[str, Any] = dict.fromkeys(DESCRIBED)
        for source in self._sources:
            try:
                found = source.describe(envelope)
            except Exception as exc:  # one source's failure must not lose the message
                log.warning("%s could not describe %s on %s, trying the next source: %r",
                            source.name, envelope["msg_id"], envelope["topic"], exc)
                log.debug("%s failed", source.name, exc_info=True)
                continue
            if found is None:
                continue
            _merge(fields, found)
            if found.understood:
                break
        self._generic.fill(fields, envelope)
        return {
            "msg_id": envelope["msg_id"],
            "topic": envelope["topic"],
            "app": _text(fields["app"]),
            "summary": _text(fields["summary"]),
            "link": _text(fields["link"]),
            "icon": _text(fields["icon"]),
            "usernames": _texts(fields["usernames"]),
            "agent": _text(fields["agent"]),
            "packages": _texts(fields["packages"]),
            "containers": _texts(fields["containers"]),
            "modules": _texts(fields["modules"]),
            "flatpaks": _texts(fields["flatpaks"]),
            "groups": _texts(fields["groups"]),
            "severity": fields["severity"],
        }


    def describe_for_headers(self, message: dict[str, Any]) -> dict[str, Any]:
        """:meth:`describe`, plus ``schema``: the name of the fedora-messaging class
        that describes ``message`` (None without one), and ``schema_package``, the
        distribution that registers it, for the AMQP headers."""
        described = self.describe(message)
        schema = package = None
        if self._schemas is not None:
            try:
                schema = self._schemas.schema_name(normalize(message))
            except Exception as exc:  # a third-party schema failing must not stop publishing
                log.debug("no schema name for %s: %r", described["msg_id"], exc)
            if schema is not None:
                package = self._schemas.schema_package(schema)
        described["schema"] = schema
        described["schema_package"] = package
        return described


def _merge(fields: dict[str, Any], found: Found) -> None:
    for key, value in found.fields.items():
        if value and not fields[key]:
            fields[key] = value
