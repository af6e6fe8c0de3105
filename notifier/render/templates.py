"""Finding, compiling and running the notification templates.

Templates live in one folder per destination (``email``, ``irc``, ``rss``,
``desktop``, and ``digest`` for digest mails), one file per part::

    email/subject.txt   email/body.txt   email/body.html
    irc/line.txt
    rss/title.txt       rss/content.html
    desktop/summary.txt desktop/body.html (markup)   desktop/body.txt (plain)
    digest/subject.txt  digest/body.txt  digest/body.html

A file named ``<app>.<part>`` overrides ``<part>`` for messages of that app,
e.g. ``email/bodhi.subject.txt``. The app name is matched lowercased, with
every run of characters other than ``a-z``, ``0-9``, ``_`` and ``-`` turned
into one ``-`` (``"Package Sources"`` -> ``package-sources``).

Two layers are searched: the site's ``templates_dir`` first, then the built-in
templates. Within a layer the app's file beats the default, and the site layer
beats the built-in one entirely: a site's ``email/subject.txt`` is used even
for an app that has a built-in override. ``{% include %}``, ``{% extends %}``
and ``{% import %}`` look in the site layer, then the built-in one; prefix a
name with ``builtin:`` to reach the built-in file, e.g. a site's
``email/body.txt`` can ``{% extends "builtin:email/body.txt" %}``.

Every template is compiled once, when the :class:`TemplateSet` is built; a
site's changes apply on restart. ``.html`` templates are autoescaped, ``.txt``
ones are not. The environment is sandboxed and immutable (templates cannot
change the data they are given), and an undefined name is an error that
names the template file and line.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import ConfigError
from . import irc

#: the part files of each template folder
PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject.txt", "body.txt", "body.html"),
    "irc": ("line.txt",),
    "rss": ("title.txt", "content.html"),
    "desktop": ("summary.txt", "body.txt", "body.html"),
    "webpush": ("title.txt", "body.txt"),
    "matrix": ("body.txt", "body.html"),
    "digest": ("subject.txt", "body.txt", "body.html"),
}
BUILTIN = "builtin"
SITE = "site"

_NOT_APP_CHARS = re.compile(r"[^a-z0-9_-]+")


def app_key(app: str | None) -> str:
    """The form of an app name used in override file names (``"Package Sources"`` ->
    ``package-sources``)."""
    return _NOT_APP_CHARS.sub("-", (app or "").lower()).strip("-")


def utc(timestamp: Any, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """Template filter: a Unix timestamp as UTC time text (empty for none)."""
    if timestamp is None or timestamp == "":
        return ""
    return datetime.fromtimestamp(float(timestamp), UTC).strftime(fmt)


def _node(root: Traversable, path: str) -> Traversable:
    node = root
    for piece in split_template_path(path):
        node = node.joinpath(piece)
    return node


class LayeredLoader(jinja2.BaseLoader):
    """Loads ``label:path`` from one layer, or a plain ``path`` from the first layer holding it."""

    def __init__(self, layers: list[tuple[str, Traversable]]):
        self.layers = layers

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        label, colon, path = template.partition(":")
        if colon:
            layers = [(name, root) for name, root in self.layers if name == label]
        else:
            layers, path = self.layers, template
        for _name, root in layers:
            node = _node(root, path)
            if node.is_file():
                try:
                    source = node.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"{node}: cannot read template: {exc}") from exc
                return source, str(node), lambda: True
        raise jinja2.TemplateNotFound(template)

    def names(self, label: str, folder: str) -> set[str]:
        """The file names in ``folder`` of one layer."""
        root = dict(self.layers)[label].joinpath(folder)
        if not root.is_dir():
            return set()
        return {entry.name for entry in root.iterdir() if entry.is_file()}


def _environment(loader: jinja2.BaseLoader, *, for_irc: bool) -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=lambda name: bool(name) and name.endswith(".html"),
        undefined=jinja2.StrictUndefined,
        finalize=irc.finalize if for_irc else _finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters["utc"] = utc
    if for_irc:
        env.filters.update(irc.FILTERS)
    return env


def _finalize(value: Any) -> Any:
    # A missing link or icon prints as nothing rather than "None".
    return "" if value is None else value


class TemplateSet:
    """Every notification template of an installation, compiled and ready to render.

    ``site_dir`` is the ``templates_dir`` config key (or ``None``);
    ``builtin`` is where the built-in templates are, by default the
    ``notifier.templates`` package.
    """

    def __init__(self, site_dir: str | None = None, builtin: Traversable | None = None):
        layers: list[tuple[str, Traversable]] = []
        if site_dir is not None:
            if not Path(site_dir).is_dir():
                raise ConfigError(f"'templates_dir' = {site_dir!r}: no such directory")
            layers.append((SITE, Path(site_dir)))
        layers.append((BUILTIN, builtin if builtin is not None else files("notifier.templates")))
        self.loader = LayeredLoader(layers)
        # template name -> names it reads from the context (None: cannot tell)
        self._names: dict[str, frozenset[str] | None] = {}
        self._envs = {False: _environment(self.loader, for_irc=False),
                      True: _environment(self.loader, for_irc=True)}
        # (folder, part) -> (default template, {app key: template})
        self._chosen: dict[tuple[str, str], tuple[jinja2.Template,
                                                  dict[str, jinja2.Template]]] = {}
        for folder, parts in PARTS.items():
            listing = {label: self.loader.names(label, folder) for label, _root in layers}
            for part in parts:
                self._chosen[folder, part] = self._choose(folder, part, listing)

    def _choose(self, folder: str, part: str, listing: Mapping[str, set[str]]
                ) -> tuple[jinja2.Template, dict[str, jinja2.Template]]:
        # Which app files each layer has, by normalised app name.
        apps = {label: {app_key(name[: -len(part) - 1]): name for name in names
                        if name.endswith("." + part) and app_key(name[: -len(part) - 1])}
                for label, names in listing.items()}
        env = self._envs[folder == "irc"]
        default = None
        for label, names in listing.items():
            if part in names:
                default = self._compile(env, f"{label}:{folder}/{part}")
                break
        if default is None:
            raise ConfigError(f"no template {folder}/{part} in "
                              f"{' or '.join(str(root) for _l, root in self.loader.layers)}")
        by_app: dict[str, jinja2.Template] = {}
        for app in set().union(*apps.values()):
            for label, names in listing.items():
                if app in apps[label]:
                    by_app[app] = self._compile(env, f"{label}:{folder}/{apps[label][app]}")
                    break
                if part in names:
                    break  # this layer's default beats later layers' app files
        return default, by_app

    def _compile(self, env: jinja2.Environment, name: str) -> jinja2.Template:
        try:
            template = env.get_template(name)
            if name not in self._names:
                self._names[name] = self._context_names(env, name, set())
            return template
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{exc.filename or name}, line {exc.lineno}: "
                              f"{exc.message}") from exc

    def _context_names(self, env: jinja2.Environment, name: str,
                       seen: set[str]) -> frozenset[str] | None:
        """Names ``name`` and the templates it includes read from the context."""
        if name in seen:
            return frozenset()
        seen.add(name)
        try:
            source, filename, _uptodate = self.loader.get_source(env, name)
        except jinja2.TemplateNotFound:
            # Only an included name can be missing here ("ignore missing" allows it);
            # otherwise rendering says which include is missing.
            return frozenset()
        tree = env.parse(source, name, filename)
        names = set(meta.find_undeclared_variables(tree))
        for included in meta.find_referenced_templates(tree):
            below = None if included is None else self._context_names(env, included, seen)
            if below is None:  # a computed template name: it could read anything
                return None
            names |= below
        return frozenset(names)

    def reads(self, template: jinja2.Template, name: str) -> bool:
        """Whether ``template`` (or a template it includes) may read ``name``."""
        names = self._names.get(template.name or "")
        return names is None or name in names

    def get(self, folder: str, part: str, app: str | None = None) -> jinja2.Template:
        """The template for ``part`` in ``folder``, for a message of ``app``."""
        default, by_app = self._chosen[folder, part]
        return by_app.get(app_key(app), default) if by_app and app else default

    def render(self, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        """Run ``template``; a mistake in it is a :class:`ConfigError` naming the file and line."""
        try:
            return template.render(context)
        except (jinja2.TemplateError, TypeError, ValueError, LookupError, ArithmeticError,
                AttributeError) as exc:
            raise ConfigError(f"{self._where(template, exc)}: {type(exc).__name__}: "
                              f"{exc}") from exc

    @staticmethod
    def _where(template: jinja2.Template, exc: BaseException) -> str:
        # Jinja rewrites the traceback so that template frames carry the
        # template's file name and line; the innermost one is the culprit
        # (it may be an included file).
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            name = frame.filename or ""
            if not name.endswith(".py") and not name.startswith("<"):
                return f"{name}, line {frame.lineno}"
        return str(template.filename or template.name)
