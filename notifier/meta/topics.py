"""Read the application name out of a topic.

A fedmsg topic is ``{prefix}.{environment}.{modname}.{event...}``, for
example ``org.fedoraproject.prod.bodhi.update.comment``; fedora-messaging
topics in Fedora look the same. Other deployments use other prefixes
(``io.pagure.prod.pagure.git.receive``), and a bare topic has none at all
(``bodhi.update.comment``). The modname is the application.
"""

from __future__ import annotations

#: Environment names recognised after a foreign prefix (ours is always recognised).
ENVIRONMENTS = frozenset({"dev", "stg", "stage", "staging", "prod", "test"})

# Past this many segments, a known environment name is no longer taken for
# the end of a prefix ("org.fedoraproject.prod" has it at index 2).
_MAX_PREFIX_SEGMENTS = 4
_CACHE_SIZE = 4096


class TopicNames:
    """Splits topics into (application, event) for one deployment.

    ``event`` is the topic without prefix and environment, for example
    ``bodhi.update.comment``. Results are cached per topic.
    """

    def __init__(self, topic_prefix: str, environment: str):
        self._prefix = topic_prefix.strip(".") + "." if topic_prefix.strip(".") else ""
        self._prefix_len = self._prefix.count(".")
        self._environments = ENVIRONMENTS | {environment}
        self._cache: dict[str, tuple[str, str]] = {}

    def split(self, topic: str) -> tuple[str, str]:
        """``(app, event)`` for ``topic``."""
        found = self._cache.get(topic)
        if found is None:
            found = self._split(topic)
            if len(self._cache) < _CACHE_SIZE:
                self._cache[topic] = found
        return found

    def app(self, topic: str) -> str:
        """The application (modname) of ``topic``."""
        return self.split(topic)[0]

    def _split(self, topic: str) -> tuple[str, str]:
        parts = [p for p in topic.split(".") if p]
        if not parts:
            return topic, topic
        rest = parts
        if self._prefix and topic.startswith(self._prefix):
            rest = parts[self._prefix_len:]
            if rest and rest[0] in self._environments:
                rest = rest[1:]
        else:
            for i in range(1, min(_MAX_PREFIX_SEGMENTS, len(parts) - 1)):
                if parts[i] in self._environments:
                    rest = parts[i + 1:]
                    break
        if not rest:
            rest = parts[-1:]
        return rest[0], ".".join(rest)
