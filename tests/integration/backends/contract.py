"""The contract every delivery backend keeps, checked against a real receiving end.

Each test below runs once per *peer*: a harness that runs the real thing a
backend delivers to (an SMTP server, a Maildir, a feed database read back with
feedparser, an IRC server, a D-Bus notification daemon) and reports what
arrived there. Nothing is mocked.

Adding a peer
=============

1. Write the harness in its own module next to this one, e.g.
   ``tests/integration/backends/peers_irc.py``, as a class following
   :class:`Peer` (subclass :class:`BasePeer` for the defaults).
2. Add ONE line, ``"tests.integration.backends.peers_irc:IrcPeer",``, to
   ``PEERS`` in ``tests/integration/backends/conftest.py``.

Every test here then also runs against it, with the test id
``test_...[<Peer.id>]``. ``pytest tests/integration/backends/contract.py -k irc``
runs just that peer. (conftest.py collects this module although its name does
not start with ``test_``.)

The peer interface
==================

A peer class has these attributes and methods (see :class:`Peer`):

``name``
    The backend's name in ``notifier.backends.registry`` (``"irc"``).
``id``
    A test id, unique among the peers (``"irc"``, ``"email-maildir"``).
``stoppable``
    True when :meth:`stop` makes ``send()`` fail with
    ``TemporaryDeliveryError`` (a server that went away). False where a
    stopped peer means nothing (a Maildir, a database file).
``routes_by_address``
    True when two users get their own deliveries at their own addresses.
``settle``
    Seconds to keep listening after the expected deliveries arrived, to
    catch duplicates: 0 when ``send()`` returns only once the peer has the
    delivery (SMTP, Maildir, database); a little for asynchronous ones (IRC).
``__init__(tmp_path)``
    Construct, without starting. ``tmp_path`` is the test's own directory.
``start()``
    Start the receiving end. May call ``pytest.skip`` when it cannot run
    here (a service that is not installed).
``stop()``
    Stop it. Must be safe to call twice; the fixture calls it at teardown.
``config() -> dict``
    The configuration, as for ``config_from_dict``, that points the backend
    at this peer. Relative paths are resolved against ``tmp_path``.
``address(user) -> str``
    The ``Notification.address`` that reaches ``user`` at this peer.
``content(summary, body) -> dict[str, str]``
    The rendered ``Notification.content`` for this destination;
    :class:`BasePeer` uses :func:`default_content`.
``received(timeout) -> list[Delivered]``
    The deliveries that arrived since the last call, oldest first. Waits up
    to ``timeout`` seconds for the first one; ``[]`` when none came.
``reject_address() -> str | None``
    An address the peer refuses permanently, or None when it has none.
``share(shared)`` (optional)
    Called before :meth:`start` with what the module's tests share
    (``conftest.Shared``): a peer slow to start keeps one server for them all
    there, and :meth:`start` starts it again if a test stopped it. Such a peer
    also has ``release()``, called at the end of each test in place of
    :meth:`stop`, which leaves the shared server running.

The rules the contract sets
===========================

* ``close()`` releases connections and may be called any number of times,
  also before ``setup()``. A ``send()`` after ``close()`` opens what it needs
  again and delivers: one backend object can be closed when idle and used
  later.
* A notification without the content its destination needs is refused with
  ``PermanentDeliveryError``, and nothing is delivered.
* An address the peer refuses permanently gives ``PermanentDeliveryError``
  naming that address; a peer that is down gives ``TemporaryDeliveryError``.
  Both keep the original error as ``__cause__``, and the backend keeps
  working for the next notification.
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest

from notifier.backends.base import Backend
from notifier.backends.registry import available, backend_class
from notifier.errors import PermanentDeliveryError, TemporaryDeliveryError
from notifier.notification import Notification

#: how long a test waits for deliveries that should arrive
WAIT = 10.0

MakeBackend = Callable[..., Backend]


@dataclass(frozen=True)
class Delivered:
    """One notification as it arrived at a peer."""

    #: where it arrived: the recipient, the nick, the feed's user
    address: str
    #: everything the user sees, as plain text (subject and body, the line, ...)
    text: str
    #: the peer's own form of it (an email message, a feed entry, ...), for peer-specific checks
    raw: Any = field(default=None, compare=False, repr=False)


class Peer(Protocol):
    """What the contract needs from a receiving end; see the module docstring."""

    name: ClassVar[str]
    id: ClassVar[str]
    stoppable: ClassVar[bool]
    routes_by_address: ClassVar[bool]
    settle: ClassVar[float]

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def config(self) -> dict[str, Any]: ...
    def address(self, user: str) -> str: ...
    def content(self, summary: str, body: str) -> dict[str, str]: ...
    def received(self, timeout: float) -> list[Delivered]: ...
    def reject_address(self) -> str | None: ...


class BasePeer:
    """Defaults for a peer: content from :func:`default_content`, no reject address."""

    name: ClassVar[str]
    id: ClassVar[str]
    stoppable: ClassVar[bool] = False
    routes_by_address: ClassVar[bool] = True
    settle: ClassVar[float] = 0.0

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path

    def start(self) -> None:
        """Nothing to start by default."""

    def stop(self) -> None:
        """Nothing to stop by default."""

    def content(self, summary: str, body: str) -> dict[str, str]:
        return default_content(self.name, summary, body)

    def reject_address(self) -> str | None:
        return None


def default_content(destination: str, summary: str, body: str) -> dict[str, str]:
    """Rendered content for the built-in destinations, as the render stage shapes it."""
    markup = f"<p><strong>{html.escape(summary)}</strong></p><p>{html.escape(body)}</p>"
    if destination == "email":
        return {"subject": summary, "text": f"{summary}\n\n{body}\n", "html": markup}
    if destination == "rss":
        return {"title": summary, "content": markup}
    if destination == "irc":
        return {"line": f"{summary} \u2014 {body}"}
    if destination == "desktop":
        return {"summary": summary, "body": body}
    raise ValueError(f"no default content for destination {destination!r}; "
                     "override content() in its peer")


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment, tags dropped and entities decoded."""
    parts: list[str] = []

    class Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            parts.append(data)

    parser = Text(convert_charrefs=True)
    parser.feed(fragment)
    parser.close()
    return html.unescape("".join(parts))


def notification(peer: Peer, user: str = "alice", summary: str = "Build finished",
                 body: str = "python-requests 2.32.3-1.fc41 built", *,
                 address: str | None = None, content: dict[str, str] | None = None
                 ) -> Notification:
    """A rendered notification for ``user`` at ``peer``, with a fresh message id."""
    msg_id = f"2025-{uuid.uuid4()}"
    return Notification(
        user=user, destination=peer.name,
        address=address if address is not None else peer.address(user),
        msg_id=msg_id, topic="org.fedoraproject.dev.buildsys.build.state.change",
        app="koji", content=content if content is not None else peer.content(summary, body),
        rules=("my builds",), link=f"https://koji.example.org/taskinfo?msg={msg_id}",
        timestamp=time.time())


def collect(peer: Peer, count: int, timeout: float = WAIT) -> list[Delivered]:
    """Deliveries until ``count`` arrived or ``timeout`` passed, then any stragglers."""
    got: list[Delivered] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += peer.received(left)
    got += peer.received(peer.settle)
    return got


# -- the contract ------------------------------------------------------------

def test_registered_under_its_name(peer: Peer, make_backend: MakeBackend) -> None:
    cls = backend_class(peer.name)
    assert peer.name in available()
    assert issubclass(cls, Backend)
    assert cls.name == peer.name
    assert type(make_backend(peer)) is cls


def test_capabilities_have_the_right_types(peer: Peer) -> None:
    cls = backend_class(peer.name)
    assert cls.max_length is None or (type(cls.max_length) is int and cls.max_length > 0)
    assert type(cls.single_line) is bool
    assert cls.markup in (None, "html", "pango")
    assert type(cls.batched) is bool
    # A backend that says it delivers batches at once has its own send_batch.
    assert not cls.batched or cls.send_batch is not Backend.send_batch


def test_one_notification_arrives_with_its_content(peer: Peer,
                                                   make_backend: MakeBackend) -> None:
    backend = make_backend(peer)
    backend.setup()
    backend.send(notification(peer, summary="Build finished: python-requests",
                              body="the build of python-requests succeeded"))
    (got,) = collect(peer, 1)
    assert got.address == peer.address("alice")
    assert "Build finished: python-requests" in got.text


def test_unicode_survives(peer: Peer, make_backend: MakeBackend) -> None:
    summary = "Zo\u00eb\u2019s build \u2713 \u6f22\u5b57 \U0001f680 \u2014 \u00e7a marche"
    backend = make_backend(peer)
    backend.setup()
    backend.send(notification(peer, user="zoe", summary=summary, body="caf\u00e9 \u00fcber"))
    (got,) = collect(peer, 1)
    assert summary in got.text


def test_many_arrive_exactly_once_and_in_order(peer: Peer, make_backend: MakeBackend) -> None:
    count = 12
    backend = make_backend(peer)
    backend.setup()
    for i in range(count):
        backend.send(notification(peer, summary=f"notification number {i:02d}"))
    got = collect(peer, count)
    numbers = [i for d in got for i in range(count) if f"notification number {i:02d}" in d.text]
    assert numbers == list(range(count)), [d.text for d in got]
    assert len(got) == count


def test_send_after_close_reopens(peer: Peer, make_backend: MakeBackend) -> None:
    backend = make_backend(peer)
    backend.setup()
    backend.send(notification(peer, summary="before close"))
    backend.close()
    backend.send(notification(peer, summary="after close"))
    got = collect(peer, 2)
    assert ["before close" in got[0].text, "after close" in got[1].text] == [True, True]
    assert len(got) == 2


def test_close_is_idempotent(peer: Peer, make_backend: MakeBackend) -> None:
    unused = make_backend(peer)
    unused.close()
    unused.close()
    backend = make_backend(peer)
    backend.setup()
    backend.send(notification(peer, summary="only once"))
    backend.close()
    backend.close()
    got = collect(peer, 1)
    assert len(got) == 1
    assert "only once" in got[0].text


def test_each_user_gets_their_own(peer: Peer, make_backend: MakeBackend) -> None:
    if not peer.routes_by_address:
        pytest.skip(f"{peer.id} delivers to one user only")
    backend = make_backend(peer)
    backend.setup()
    backend.send(notification(peer, user="alice", summary="for alice"))
    backend.send(notification(peer, user="bob", summary="for bob"))
    got = collect(peer, 2)
    assert sorted((d.address, "for alice" in d.text, "for bob" in d.text) for d in got) == \
        sorted([(peer.address("alice"), True, False), (peer.address("bob"), False, True)])


def test_missing_content_is_permanent(peer: Peer, make_backend: MakeBackend) -> None:
    backend = make_backend(peer)
    backend.setup()
    with pytest.raises(PermanentDeliveryError):
        backend.send(notification(peer, content={}))
    assert collect(peer, 0, timeout=0) == []
    backend.send(notification(peer, summary="still working"))
    assert ["still working" in d.text for d in collect(peer, 1)] == [True]


def test_rejected_address_is_permanent(peer: Peer, make_backend: MakeBackend) -> None:
    rejected = peer.reject_address()
    if rejected is None:
        pytest.skip(f"{peer.id} has no address it refuses")
    backend = make_backend(peer)
    backend.setup()
    with pytest.raises(PermanentDeliveryError) as info:
        backend.send(notification(peer, address=rejected))
    assert rejected in str(info.value)
    assert info.value.__cause__ is not None
    backend.send(notification(peer, summary="after the refusal"))
    got = collect(peer, 1)
    assert [(d.address, "after the refusal" in d.text) for d in got] == \
        [(peer.address("alice"), True)]


def test_stopped_peer_is_temporary(peer: Peer, make_backend: MakeBackend) -> None:
    if not peer.stoppable:
        pytest.skip(f"{peer.id} cannot be stopped")
    connected = make_backend(peer)
    connected.setup()
    connected.send(notification(peer, summary="while up"))
    assert len(collect(peer, 1)) == 1
    peer.stop()
    with pytest.raises(TemporaryDeliveryError) as info:
        connected.send(notification(peer, summary="while down"))
    assert info.value.__cause__ is not None
    fresh = make_backend(peer)
    with pytest.raises(TemporaryDeliveryError) as info:
        fresh.setup()  # a backend that connects in setup() may fail here already
        fresh.send(notification(peer, summary="while down"))
    assert info.value.__cause__ is not None
