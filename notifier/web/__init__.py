"""notifier's HTTP side: an ASGI application (FastAPI) served by uvicorn inside ``notifier serve``.

* :mod:`.app`: the routes (feeds, live streams, unsubscribe, health, metrics, ``/``);
* :mod:`.server`: :class:`WebServer`, the supervised part that runs uvicorn on a
  socket bound by :mod:`.binding`, with the bounds of :mod:`.protocol` and :mod:`.limits`;
* :mod:`.hub`, :mod:`.sources` and :mod:`.stream`: live streams fed by one database read
  per batch (desktop outbox rows, and inbox rows for :mod:`.inboxstream`);
* :mod:`.users`: local users and their feed tokens, unknown names cached;
* :mod:`.pages`: the HTML pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import WebServer

__all__ = ["WebServer"]


def __getattr__(name: str) -> Any:
    # Loaded when asked for: FastAPI takes most of a second to import, and a serve
    # whose HTTP side runs in a process of its own never needs it in the main one.
    if name == "WebServer":
        from .server import WebServer

        return WebServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
