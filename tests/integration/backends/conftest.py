"""Fixtures for the backend tests, and the peers the contract suite runs against.

The contract suite is ``contract.py`` in this folder; read its docstring for
the peer interface. To run it against one more receiving end, add one line
to :data:`PEERS` below, nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from notifier.backends.base import Backend
from notifier.backends.registry import backend_class
from notifier.config import config_from_dict

from .contract import MakeBackend, Peer

HERE = Path(__file__).resolve().parent

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


@pytest.fixture(params=_peer_classes(), ids=lambda cls: cls.id)
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Peer]:
    """A started peer, one per entry in :data:`PEERS`; stopped afterwards."""
    instance = request.param(tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


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
