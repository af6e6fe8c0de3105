"""``GET /widget.js``: the ``<notifier-inbox>`` element, for pages on other sites.

A site embeds it with one tag, ``<script src="{base_url}/widget.js"></script>``,
and puts ``<notifier-inbox></notifier-inbox>`` where the unread count and the
list of latest notifications go. The script reads ``GET
/api/v1/notifications`` and the live stream with the browser's session
cookie (or a read token given as the element's ``token`` attribute), which
works from the origins listed in ``[http] allowed_origins`` only (see
:mod:`.cors`). The file is ``templates/web/static/widget.js``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import Response

from .api import PREFIX

#: where the script is served
PATH = "/widget.js"
#: what the script reads besides the live stream: allowed origins may, with credentials
API_PATHS = (f"{PREFIX}/notifications", f"{PREFIX}/notifications/counts")

router = APIRouter(include_in_schema=False)


@cache
def script() -> bytes:
    """The widget's JavaScript."""
    return files("notifier.templates").joinpath("web", "static", "widget.js").read_bytes()


@router.get(PATH)
def widget() -> Response:
    # Other origins load it with <script src>: a host page that isolates itself
    # (Cross-Origin-Embedder-Policy) needs the Cross-Origin-Resource-Policy to allow it.
    return Response(script(), media_type="text/javascript; charset=utf-8", headers={
        "Cache-Control": "public, max-age=3600",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff"})
