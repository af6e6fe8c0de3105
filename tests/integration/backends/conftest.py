"""Fixtures for the backend tests, and the peers the contract suite runs against.

The contract suite is ``contract.py`` in this folder; read its docstring for
the peer interface. To run it against one more receiving end, add one line
to :data:`PEERS` below, nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar

import pytest

from notifier.backends.base import Backend
from notifier.backends.registry import backend_class
from notifier.config import config_from_dict

from .contract import MakeBackend, Peer

HERE = Path(__file__).resolve().parent
T = TypeVar("T")

#: Every peer the contract suite runs against, as "module:Class".
PEERS = [
    "tests.integration.backends.peers_email:SmtpPeer",
    "tests.integration.backends.peers_email:MaildirPeer",
    "tests.integration.backends.peers_rss:AtomPeer",
    "tests.integration.backends.peers_rss:Rss2Peer",
    "tests.integration.backends.peers_rss:PostgresFeedPeer",
    "tests.integration.backends.peers_irc:IrcPeer",
    "tests.integration.backends.peers_dbus:DesktopPeer",
    "tests.integration.backends.peers_webpush:WebpushPeer",
    "tests.integration.backends.peers_matrix:MatrixPeer",
]


def _peer_classes() -> list[type[Any]]:
    classes = []
    for spec in PEERS:
        module, _, attr = spec.partition(":")
        classes.append(getattr(import_module(module), attr))
    ids = [cls.id for cls in classes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"peer ids must be unique; used twice: {', '.join(duplicates)}")
    return classes


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect contract.py as a test module; its name does not match test_*.py."""
    if file_path == HERE / "contract.py" and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


class Shared:
    """What the peers of one test module keep across its tests (a server slow to start),
    by name, each made once in a directory of its own; :meth:`close` stops them."""

    def __init__(self, factory: pytest.TempPathFactory):
        self._factory = factory
        self._things: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    def get(self, name: str, make: Callable[[Path], T]) -> T:
        """The thing called ``name``, made by ``make(directory)`` the first time."""
        if name not in self._things:
            self._things[name] = make(self._factory.mktemp(name))
        return self._things[name]  # type: ignore[no-any-return]

    def count(self, name: str) -> int:
        """1, 2, ...: a number new on every call for ``name`` (for names unique per test)."""
        self._counts[name] = self._counts.get(name, 0) + 1
        return self._counts[name]

    def close(self) -> None:
        for thing in self._things.values():
            stop = getattr(thing, "stop", None)
            if stop is not None:
                stop()


@pytest.fixture(scope="module")
def peer_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """What peers share across the module's tests (see :meth:`BasePeer.share`)."""
    shared = Shared(tmp_path_factory)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(params=_peer_classes(), ids=lambda cls: cls.id)
def peer(request: pytest.FixtureRequest, tmp_path: Path, peer_shared: Shared) -> Iterator[Peer]:
    """A started peer, one per entry in :data:`PEERS`; stopped afterwards."""
    instance = request.param(tmp_path)
    share = getattr(instance, "share", None)
    if share is not None:
        share(peer_shared)
    instance.start()
    try:
        yield instance
    finally:
        # a peer that shares its server leaves it running for the module's next test
        (instance.release if share is not None else instance.stop)()


@pytest.fixture
def make_backend(tmp_path: Path) -> Iterator[MakeBackend]:
    """``make_backend(peer, **sections)``: the peer's backend, configured for it.

    Keyword arguments are config tables merged over the peer's own, e.g.
    ``make_backend(peer, email={"timeout": 1.0})``. Every backend made is
    closed at the end of the test.
    """
    made: list[Backend] = []

    def make(peer: Peer, **sections: dict[str, Any]) -> Backend:
        data = peer.config()
        for table, values in sections.items():
            data[table] = {**data.get(table, {}), **values}
        config = config_from_dict(data, str(tmp_path / "notifier.toml"))
        backend = backend_class(peer.name)(config)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
