"""The API's interactive docs page, ``/api/v1/docs``: Swagger UI, served by this service.

Swagger UI's files come from the ``swagger-ui-bundle`` package (the ``web``
extra) and are served under ``/api/v1/docs/static``, so the page works
without reaching any other site. Without the package the page says how to
get it; the schema at ``/api/v1/openapi.json`` is there either way.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from . import pages


def add_docs(app: FastAPI, prefix: str) -> None:
    """Serve the docs page at ``{prefix}/docs`` for the schema at ``{prefix}/openapi.json``."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None
    static = f"{prefix}/docs/static"
    if swagger_ui_path is not None:
        app.mount(static, StaticFiles(directory=swagger_ui_path), name="api-docs-static")

    async def docs(request: Request) -> Response:
        if swagger_ui_path is None:
            return pages.page("API docs", "<p>The docs page needs the <code>web</code> extra "
                              "(<code>pip install notifier[web]</code>). The schema is at "
                              f"<a href='{prefix}/openapi.json'>{prefix}/openapi.json</a>.</p>")
        return get_swagger_ui_html(
            openapi_url=f"{prefix}/openapi.json", title="notifier API",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png")

    app.add_route(f"{prefix}/docs", docs, methods=["GET"], include_in_schema=False)
