"""Artifacts: the packages, containers, modules and flatpaks that people own and follow.

Fedora's dist-git holds four kinds of artifact, each in a namespace of its
own, and a message says which ones it concerns in four lists, as
fedora-messaging's ``Message`` properties and its AMQP header flags do:

==============  ================  ====================================  =========
kind            described record  AMQP header flag                      dist-git
==============  ================  ====================================  =========
``rpms``        ``packages``      ``fedora_messaging_rpm_NAME``         rpms
``containers``  ``containers``    ``fedora_messaging_container_NAME``   container
``modules``     ``modules``       ``fedora_messaging_module_NAME``      modules
``flatpaks``    ``flatpaks``      ``fedora_messaging_flatpak_NAME``     flatpaks
==============  ================  ====================================  =========

One string names an artifact everywhere notifier keeps one (package owners,
followed artifacts in rules, the history's index, the change log): its
**key**. An RPM package's key is its bare name (``kernel``), as it always
was; the other kinds' is the kind, a slash and the name
(``containers/fedora-toolbox``, ``modules/nodejs``, ``flatpaks/firefox``),
the names FMN gives them. RPM names never hold a slash, so the two cannot
be confused.

What people type is read by :func:`parse`: a bare name is a package, and a
kind may be spelled as FMN does (``rpms/``, ``containers/``, ``modules/``,
``flatpaks/``), as dist-git's namespace                                 the
singular (``rpm/``, ``package/``, ``module/``, ``flatpak/``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .settings import hint

#: the artifact kinds, FMN's names for them, packages first
KINDS = ("rpms", "containers", "modules", "flatpaks")
#: kind -> the described record's list (fedora-messaging's ``Message`` property)
FIELDS = {"rpms": "packages", "containers": "containers", "modules": "modules",
          "flatpaks": "flatpaks"}
#: the described record's artifact lists, packages first
RECORD_FIELDS = tuple(FIELDS.values())
#: kind -> one artifact of that kind, in words
NOUNS = {"rpms": "package", "containers": "container", "modules": "module",
         "flatpaks": "flatpak"}
#: every spelling of a kind that is read -> the kind
SPELLINGS = {
    **{kind: kind for kind in KINDS},
    "rpm": "rpms", "package": "rpms", "packages": "rpms",
    "container": "containers", "module": "modules", "flatpak": "flatpaks",
}
_PREFIXES = tuple(f"{kind}/" for kind in KINDS[1:])


def kind_named(word: str) -> str | None:
    """The kind that ``word`` spells (``container`` -> ``containers``), or None."""
    return SPELLINGS.get(word)


def unknown_kind(word: str) -> str:
    """The complaint about ``word``, which names no kind, with the nearest one."""
    return (f"unknown artifact kind '{word}'{hint(word, list(SPELLINGS))}; "
            f"one of: {', '.join(KINDS)}")


def key(kind: str, name: str) -> str:
    """The key of the artifact ``name`` of ``kind`` (one of :data:`KINDS`)."""
    return name if kind == "rpms" else f"{kind}/{name}"


def split(artifact: str) -> tuple[str, str]:
    """``(kind, name)`` of a key; a name without a known kind prefix is a package."""
    if artifact.startswith(_PREFIXES):
        kind, name = artifact.split("/", 1)
        return kind, name
    return "rpms", artifact


def parse(text: str) -> str:
    """The key of an artifact as a person writes it; ``ValueError`` saying what is wrong.

    ``kernel`` and ``rpms/kernel`` are the package kernel (key ``kernel``);
    ``container/toolbox`` and ``containers/toolbox`` the container
    (``containers/toolbox``). A prefix that names no kind, or an empty name
    after it, is refused.
    """
    if "/" not in text:
        return text
    prefix, name = text.split("/", 1)
    kind = SPELLINGS.get(prefix)
    if kind is None:
        raise ValueError(unknown_kind(prefix) + f" (in '{text}'; write KIND/NAME, or the bare "
                         "name of a package)")
    if not name.strip() or "/" in name:
        raise ValueError(f"'{text}' names no {NOUNS[kind]}: write {kind}/NAME")
    return key(kind, name)


def label(artifact: str) -> str:
    """A key in words: ``package 'kernel'``, ``container 'fedora-toolbox'``."""
    kind, name = split(artifact)
    return f"{NOUNS[kind]} '{name}'"


def record_keys(record: Mapping[str, Any]) -> Iterator[str]:
    """The key of every artifact a described record concerns, packages first."""
    packages = record.get("packages")
    if packages:
        yield from packages
    for kind in KINDS[1:]:
        names = record.get(FIELDS[kind])
        if names:
            for name in names:
                yield f"{kind}/{name}"
