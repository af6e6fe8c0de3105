"""Ownership files: who owns which package, container, module and flatpak.

The format, as ``notifier owners import`` reads it::

    {"packages": {"python-requests": {"users": ["alice"], "groups": ["python-sig"]}},
     "containers": {"fedora-toolbox": {"users": ["bob"]}},
     "modules": {"nodejs": ["carol", "@nodejs-sig"]},
     "flatpaks": {"firefox": {"groups": ["flatpak-sig"]}}}

Each top-level key is a kind of artifact (:mod:`.artifacts`), in any of its
spellings: ``packages`` or dist-git's ``rpms``, ``containers`` or dist-git's
``container``, ``modules``, ``flatpaks``. Only the kinds present are read,
so a file of packages alone is what it always was. Each name maps to its
owners: an object with ``users`` and ``groups`` (either may be missing), or
a list of names in which ``@name`` is a group, the form of dist-git's owner
alias files. An artifact listed with no owners at all loses its stored
owners. Dist-git namespaces of no kind notifier tracks (``tests``, its test
repositories) are passed over, so dist-git's own file imports as it is;
:func:`passed_over` names them.

Owners are kept by artifact key (``python-requests``,
``containers/fedora-toolbox``), so a package's owners are stored as they
always were.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from . import artifacts
from .records import did_you_mean

KINDS = {"users": "user", "groups": "group"}
#: the top-level keys read, each an artifact kind's spelling
TOP_KEYS = ("packages", "containers", "modules", "flatpaks", "rpms", "container")
#: dist-git namespaces that are no artifact kind: read past, never refused
PASSED_OVER = ("tests",)
#: what an artifact's owners are: owner kind -> sorted names
Owners = dict[str, list[str]]


def check_ownership_file(data: Any, source: str) -> dict[str, Owners]:
    """Check a whole ownership document; return ``{artifact key: {"users", "groups"}}``."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with a 'packages' key, not "
                         f"{type(data).__name__} (or 'containers', 'modules', 'flatpaks')")
    for key in data:
        if key not in TOP_KEYS and key not in PASSED_OVER:
            raise InputError(f"{source}: unknown key '{key}'{did_you_mean(key, TOP_KEYS)} "
                             f"at the top level; one of: {', '.join(TOP_KEYS)}")
    if not any(key in TOP_KEYS for key in data):
        raise InputError(f"{source}: missing the 'packages' object (or 'containers', "
                         "'modules', 'flatpaks')")
    out: dict[str, Owners] = {}
    where_from: dict[str, str] = {}
    for top, entries in data.items():
        if top in PASSED_OVER:
            continue
        kind = artifacts.SPELLINGS[top]
        noun = artifacts.NOUNS[kind]
        if not isinstance(entries, dict):
            raise InputError(f"{source}: '{top}' must be an object mapping {noun} names to "
                             f"owners, not {type(entries).__name__}")
        for name, entry in entries.items():
            where = f"{source}: {noun} {name!r}"
            if not name or name != name.strip() or "/" in name:
                raise InputError(f"{where}: not a valid {noun} name")
            key = artifacts.key(kind, name)
            if key in out:
                raise InputError(f"{where}: listed twice, under '{where_from[key]}' and "
                                 f"'{top}'")
            out[key] = _owners(entry, where)
            where_from[key] = top
    return out


def passed_over(data: Any) -> list[str]:
    """The top-level keys of an ownership document that :func:`check_ownership_file` skips."""
    return [key for key in data if key in PASSED_OVER] if isinstance(data, dict) else []


def check_packages(packages: Any, source: str = "<packages>") -> dict[str, Owners]:
    """Check ``{artifact: owners}``, ``artifact`` being a key or a ``KIND/NAME``
    (:func:`.artifacts.parse`); return it by key, lists sorted."""
    if not isinstance(packages, dict):
        raise InputError(f"{source}: 'packages' must be an object mapping package names "
                         f"to owners, not {type(packages).__name__}")
    out: dict[str, Owners] = {}
    for name, entry in packages.items():
        where = f"{source}: package {name!r}"
        if not isinstance(name, str) or not name or name != name.strip():
            raise InputError(f"{where}: not a valid package name")
        try:
            key = artifacts.parse(name)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from exc
        if key in out:
            raise InputError(f"{where}: listed twice")
        out[key] = _owners(entry, where)
    return out


def _owners(entry: Any, where: str) -> Owners:
    if isinstance(entry, list):  # dist-git's owner alias form: users, and @groups
        if not all(isinstance(v, str) and v.lstrip("@") for v in entry):
            raise InputError(f"{where}: a list of owners must hold non-empty names "
                             "('@name' for a group)")
        return {"users": sorted({v for v in entry if not v.startswith("@")}),
                "groups": sorted({v[1:] for v in entry if v.startswith("@")})}
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object with 'users' and 'groups' (or a list "
                         f"of owners), not {type(entry).__name__}")
    normal: Owners = {}
    for key, value in entry.items():
        if key not in KINDS:
            raise InputError(f"{where}: unknown key '{key}'{did_you_mean(key, tuple(KINDS))}")
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"{where}: '{key}' must be a list of non-empty strings")
        normal[key] = sorted(set(value))
    return {"users": normal.get("users", []), "groups": normal.get("groups", [])}


def ownership_pairs(packages: dict[str, Owners]) -> set[tuple[str, str, str]]:
    """``(artifact key, kind, name)`` for every owner in checked ``packages``; kind is
    user|group."""
    return {(package, KINDS[key], name)
            for package, entry in packages.items()
            for key in KINDS
            for name in entry[key]}
