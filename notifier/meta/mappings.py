"""Descriptions a site writes itself: ``[[meta.mappings]]`` in the config.

Each mapping applies to the topics matching its ``topic`` glob (fnmatch:
``*``, ``?``, ``[...]``; ``*`` also matches dots) and says where each field
is in the message body, as a dotted path::

    [[meta.mappings]]
    topic = "org.example.prod.ci.build.*"
    app = "ci"
    summary = "{build.owner} built {build.nvr}"
    link_path = "build.url"
    agent_path = "build.owner"
    usernames_paths = ["build.owner", "build.watchers"]
    packages_paths = ["build.rpms.name"]
    containers_paths = ["build.containers.name"]
    severity = "info"

A path walks dicts by key and lists by index (``builds.0.nvr``). A segment
that is not an index, meeting a list, applies to every item, so
``build.rpms.name`` collects the ``name`` of every item of ``build.rpms``;
a path that ends on a list yields all its items.

``summary`` is a template: each ``{path}`` is replaced by the value(s) at
that path, several joined with ", "; ``{{`` and ``}}`` are literal braces.
When a placeholder finds nothing the template gives way to ``summary_path``.
``packages_paths``, ``containers_paths``, ``modules_paths`` and
``flatpaks_paths`` give the artifacts of each kind, by bare name.
``app``, ``icon`` and ``severity`` are taken as written.

Several mappings may match one topic: they are applied in config order,
each filling only what the earlier ones left empty.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..config import MetaMapping
from ..errors import ConfigError
from .base import SEVERITIES, Found

Path = tuple[str, ...]
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def parse_path(text: str) -> Path:
    """Split a dotted path; raise ``ValueError`` on an empty segment."""
    segments = tuple(text.split("."))
    if not text or any(not s for s in segments):
        raise ValueError(f"{text!r} is not a dotted path like 'build.owner'")
    return segments


def _step(item: Any, segment: str, out: list[Any]) -> None:
    if isinstance(item, dict):
        if segment in item:
            out.append(item[segment])
    elif isinstance(item, list):
        if segment.isdigit():
            index = int(segment)
            if index < len(item):
                out.append(item[index])
        else:
            for element in item:
                _step(element, segment, out)


def _flatten(values: list[Any], out: list[Any]) -> list[Any]:
    for value in values:
        if isinstance(value, list):
            _flatten(value, out)
        elif value is not None and not isinstance(value, dict):
            out.append(value)
    return out


def resolve(body: Any, path: Path) -> list[Any]:
    """Every scalar value at ``path`` in ``body`` (lists followed, dicts and None left out)."""
    current = [body]
    for segment in path:
        found: list[Any] = []
        for item in current:
            _step(item, segment, found)
        if not found:
            return []
        current = found
    return _flatten(current, [])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def parse_template(text: str) -> list[str | Path]:
    """Split a summary template into literal text and paths; ``ValueError`` if malformed."""
    parts: list[str | Path] = []
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(text):
        if match.start() > position:
            parts.append(text[position:match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif match.group(1) is not None:
            parts.append(parse_path(match.group(1).strip()))
        else:
            raise ValueError(f"unmatched {token!r} in {text!r} (write {token * 2} for a "
                             "literal brace)")
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    return parts


def render(template: Sequence[str | Path], body: Any) -> str | None:
    """Fill a parsed template from ``body``; None when a placeholder finds nothing."""
    out = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
            continue
        values = resolve(body, part)
        if not values:
            return None
        out.append(", ".join(_text(v) for v in values))
    return "".join(out)


class _Compiled:
    """One mapping, checked and ready to apply."""

    def __init__(self, mapping: MetaMapping, where: str):
        def error(name: str, problem: str) -> ConfigError:
            return ConfigError(f"{where}.{name}: {problem} (in the mapping for topic "
                               f"{mapping.topic!r})")

        def check(name: str, parse: Callable[[str], Any], value: str) -> Any:
            try:
                return parse(value)
            except ValueError as exc:
                raise error(name, str(exc)) from exc

        self.match = re.compile(fnmatch.translate(mapping.topic)).match
        self.app = mapping.app
        self.icon = mapping.icon
        if mapping.severity is not None and mapping.severity not in SEVERITIES:
            raise error("severity", f"{mapping.severity!r} is not one of "
                                    f"{', '.join(SEVERITIES)}")
        self.severity = mapping.severity
        self.summary = (check("summary", parse_template, mapping.summary)
                        if mapping.summary is not None else None)
        self.single = {field: check(f"{field}_path", parse_path, value)
                       for field, value in (("summary", mapping.summary_path),
                                            ("link", mapping.link_path),
                                            ("agent", mapping.agent_path))
                       if value is not None}
        self.lists = {field: [check(f"{field}_paths[{i}]", parse_path, p)
                              for i, p in enumerate(paths)]
                      for field, paths in (("usernames", mapping.usernames_paths),
                                           ("packages", mapping.packages_paths),
                                           ("containers", mapping.containers_paths),
                                           ("modules", mapping.modules_paths),
                                           ("flatpaks", mapping.flatpaks_paths),
                                           ("groups", mapping.groups_paths))
                      if paths}

    def apply(self, body: Any, fields: dict[str, Any]) -> None:
        def give(field: str, value: Any) -> None:
            if value and not fields.get(field):
                fields[field] = value

        give("app", self.app)
        give("icon", self.icon)
        give("severity", self.severity)
        if self.summary is not None:
            give("summary", render(self.summary, body))
        for field, path in self.single.items():
            values = resolve(body, path)
            if values:
                give(field, _text(values[0]))
        for field, paths in self.lists.items():
            give(field, [_text(v) for path in paths for v in resolve(body, path)])


class MappingSource:
    """The ``[[meta.mappings]]`` of a config, applied to the body of matching topics."""

    name = "mappings"

    def __init__(self, mappings: Sequence[MetaMapping], config_source: str = "config"):
        self._mappings = [_Compiled(m, f"{config_source}: meta.mappings[{i}]")
                          for i, m in enumerate(mappings)]

    def __bool__(self) -> bool:
        return bool(self._mappings)

    def describe(self, envelope: dict[str, Any]) -> Found | None:
        topic = envelope["topic"]
        fields: dict[str, Any] = {}
        for mapping in self._mappings:
            if mapping.match(topic):
                mapping.apply(envelope["msg"], fields)
        return Found(fields, understood=False) if fields else None
