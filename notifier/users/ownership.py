"""Package ownership files: who owns which package.

The format, as ``notifier owners import`` reads it::

    {"packages": {"python-requests": {"users": ["alice"], "groups": ["python-sig"]}}}

Either list may be missing (no owners of that kind). A package listed with
no owners at all loses its stored owners.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .records import did_you_mean

KINDS = {"users": "user", "groups": "group"}
_TOP = ("packages",)


def check_ownership_file(data: Any, source: str) -> dict[str, dict[str, list[str]]]:
    """Check a whole ownership document and return its ``packages``, normalised."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with a 'packages' key, "
                         f"not {type(data).__name__}")
    for key in data:
        if key not in _TOP:
            raise InputError(f"{source}: unknown key '{key}'{did_you_mean(key, _TOP)} "
                             f"at the top level")
    if "packages" not in data:
        raise InputError(f"{source}: missing the 'packages' object")
    return check_packages(data["packages"], source)


def check_packages(packages: Any, source: str = "<packages>") -> dict[str, dict[str, list[str]]]:
    """Check ``{package: {"users": [...], "groups": [...]}}``; return it with sorted lists."""
    if not isinstance(packages, dict):
        raise InputError(f"{source}: 'packages' must be an object mapping package names "
                         f"to owners, not {type(packages).__name__}")
    out: dict[str, dict[str, list[str]]] = {}
    for package, entry in packages.items():
        where = f"{source}: package {package!r}"
        if not package or package != package.strip():
            raise InputError(f"{where}: not a valid package name")
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object with 'users' and 'groups', "
                             f"not {type(entry).__name__}")
        normal: dict[str, list[str]] = {}
        for key, value in entry.items():
            if key not in KINDS:
                raise InputError(f"{where}: unknown key '{key}'"
                                 f"{did_you_mean(key, tuple(KINDS))}")
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise InputError(f"{where}: '{key}' must be a list of non-empty strings")
            normal[key] = sorted(set(value))
        out[package] = {"users": normal.get("users", []), "groups": normal.get("groups", [])}
    return out


def ownership_pairs(packages: dict[str, dict[str, list[str]]]) -> set[tuple[str, str, str]]:
    """``(package, kind, name)`` for every owner in checked ``packages``; kind is user|group."""
    return {(package, KINDS[key], name)
            for package, entry in packages.items()
            for key in KINDS
            for name in entry[key]}
