"""fedora-messaging schema classes as a source of metadata.

Applications publish their message classes on the ``fedora.messages``
entry point (``bodhi-messages``, ``copr-messaging``, ...). When such a
package is installed, its class describes its own messages best.

The class is chosen by the ``fedora_messaging_schema`` header when the
message has one and it names an installed class; otherwise by the topic:
a class whose ``topic`` attribute equals the message's topic, or its end
after a prefix (class topic ``bodhi.update.comment`` matches
``org.fedoraproject.prod.bodhi.update.comment``). The base ``Message``
class is never used: all it knows is the topic.

Several versions of a class can claim one topic (bodhi's v1, v2 and v3 of
``bodhi.update.status.testing.koji-build-group.build.complete``). Then the
body decides: of the classes whose ``body_schema`` validates it, the most
specific (the most required, then declared, properties; a newer version
usually adds some), the order they are registered in breaking ties; when
none validates, the first registered.

The instance is built from the body, topic and headers, with the
message's own id, without touching fedora-messaging's configuration; its
body is not validated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from .base import Found, severity_name

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fedora.messages"
SCHEMA_HEADER = "fedora_messaging_schema"
_CACHE_SIZE = 4096

# Our field -> the Message property that holds it.
_PROPERTIES = (("app", "app_name"), ("link", "url"), ("icon", "app_icon"),
               ("agent", "agent_name"), ("usernames", "usernames"), ("packages", "packages"),
               ("containers", "containers"), ("modules", "modules"), ("flatpaks", "flatpaks"),
               ("groups", "groups"))


# fedora-messaging registers its own base class; it describes nothing.
_BASE_ENTRY_POINT = "fedora_messaging.message:Message"


def schemas_installed() -> bool:
    """Whether any schema besides the base class is registered (without importing any)."""
    return any(entry.value.replace(" ", "") != _BASE_ENTRY_POINT
               for entry in entry_points(group=ENTRY_POINT_GROUP))


def installed_schemas() -> dict[str, type]:
    """The classes registered on ``fedora.messages``, by schema name.

    A class that fails to import is left out, with a warning.
    """
    classes = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            classes[entry.name] = entry.load()
        except Exception as exc:  # any import-time failure of a third-party package
            log.warning("fedora-messaging schema %s (%s) cannot be loaded, so it is not used: "
                        "%s", entry.name, entry.value, exc)
    return classes


def _specificity(cls: type) -> tuple[int, int]:
    schema = getattr(cls, "body_schema", None)
    if not isinstance(schema, dict):
        return (0, 0)
    required, properties = schema.get("required"), schema.get("properties")
    return (len(required) if isinstance(required, list) else 0,
            len(properties) if isinstance(properties, dict) else 0)


def schema_packages() -> dict[str, str]:
    """The distribution that registers each schema name, as ``fedora_messaging_schema_package``."""
    packages = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry, "dist", None)
        if dist is not None and dist.name:
            packages[entry.name] = dist.name
    return packages


class SchemaSource:
    """Describes messages with their fedora-messaging schema class.

    ``schemas`` maps schema names (as in the ``fedora_messaging_schema``
    header) to classes; by default, the installed ones. Raises ImportError
    when fedora-messaging is not installed.
    """

    name = "fedora-messaging"

    def __init__(self, schemas: Mapping[str, type] | None = None):
        import pika
        from fedora_messaging.message import Message

        self._properties = pika.BasicProperties
        self._base = Message
        if schemas is None:
            schemas = installed_schemas()
        self._by_name = {name: cls for name, cls in schemas.items()
                         if isinstance(cls, type) and issubclass(cls, Message)}
        self._by_topic: dict[str, list[type]] = {}
        for cls in self._by_name.values():
            topic = cls.__dict__.get("topic")
            if cls is not Message and isinstance(topic, str) and topic:
                claimed = self._by_topic.setdefault(topic.strip("."), [])
                if cls not in claimed:
                    claimed.append(cls)
        self._topic_cache: dict[str, tuple[type, ...]] = {}
        self._validators: dict[type, Any] = {}
        self._packages = schema_packages() if schemas is None else {}
        self._names: dict[type, str] = {}
        for name, cls in self._by_name.items():
            self._names.setdefault(cls, name)

    def __bool__(self) -> bool:
        return any(cls is not self._base for cls in self._by_name.values())

    def schema_for(self, topic: str, headers: Mapping[str, Any] | None,
                   body: Any = None) -> type | None:
        """The class for a message on ``topic`` with ``headers`` and ``body``, or None.

        ``body`` chooses between several classes claiming ``topic`` (see the
        module docstring).
        """
        name = headers.get(SCHEMA_HEADER) if headers else None
        if isinstance(name, str) and name in self._by_name:
            cls = self._by_name[name]
            return None if cls is self._base else cls
        try:
            candidates = self._topic_cache[topic]
        except KeyError:
            candidates = self._match_topic(topic)
            if len(self._topic_cache) < _CACHE_SIZE:
                self._topic_cache[topic] = candidates
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        valid = [cls for cls in candidates if self._validates(cls, body)]
        if not valid:
            return candidates[0]
        return max(valid, key=_specificity)  # max keeps the first of equals

    def schema_name(self, envelope: dict[str, Any]) -> str | None:
        """The schema name (``fedora_messaging_schema``) of the class describing ``envelope``."""
        headers = envelope.get("headers")
        cls = self.schema_for(envelope["topic"], headers if isinstance(headers, dict) else None,
                              envelope.get("msg"))
        return None if cls is None else self._names.get(cls)

    def schema_package(self, name: str) -> str | None:
        """The distribution that registers the schema ``name``, when it came from one."""
        return self._packages.get(name)

    def _validates(self, cls: type, body: Any) -> bool:
        validator = self._validators.get(cls)
        if validator is None:
            import jsonschema

            schema = getattr(cls, "body_schema", None) or {}
            validator = jsonschema.validators.validator_for(schema)(schema)
            self._validators[cls] = validator
        try:
            return bool(validator.is_valid(body))
        except Exception as exc:  # a broken schema in a third-party package
            log.debug("the body_schema of %s cannot be used: %s", cls.__name__, exc)
            return False

    def _match_topic(self, topic: str) -> tuple[type, ...]:
        if not self._by_topic:
            return ()
        parts = topic.split(".")
        for start in range(len(parts)):
            classes = self._by_topic.get(".".join(parts[start:]))
            if classes:
                return tuple(classes)
        return ()

    def describe(self, envelope: dict[str, Any]) -> Found | None:
        headers = envelope.get("headers")
        if not isinstance(headers, dict):
            headers = None
        cls = self.schema_for(envelope["topic"], headers, envelope["msg"])
        if cls is None:
            return None
        severity = headers.get("fedora_messaging_severity") if headers else None
        message = cls(body=envelope["msg"], topic=envelope["topic"],
                      properties=self._properties(headers=dict(headers or {}),
                                                  message_id=envelope["msg_id"]),
                      severity=severity if isinstance(severity, int) else None)
        fields: dict[str, Any] = {"severity": severity_name(message.severity)}
        # The class must at least summarise the message; anything else it
        # cannot say is left for the next source.
        if getattr(cls, "summary", None) is not getattr(self._base, "summary", None):
            fields["summary"] = message.summary
        for field, prop in _PROPERTIES:
            try:
                fields[field] = getattr(message, prop)
            except Exception as exc:  # a schema property failing on an unexpected body
                log.debug("%s.%s failed on %s: %s", cls.__name__, prop, envelope["msg_id"], exc)
        return Found(fields, understood=True)
