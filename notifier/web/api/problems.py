"""Errors of the API, as ``application/problem+json`` (RFC 9457).

Raise :class:`Problem` from a route; :func:`install` makes FastAPI answer
it, a request that fails validation, and any HTTP error under ``/api/v1``
in that form. A problem about a field names its path (``track.kind``,
``filters.severities.1``) in ``errors[].field``::

    {"type": "about:blank", "title": "Invalid request", "status": 422,
     "detail": "track.kind: 'artefacts-owned' is not a track kind; did you mean ...",
     "errors": [{"field": "track.kind", "detail": "..."}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

MEDIA_TYPE = "application/problem+json"
PREFIX = "/api/"


class Problem(Exception):
    """An error answer: ``status``, a short ``title``, and what exactly went wrong."""

    def __init__(self, status: int, title: str | None = None, detail: str | None = None, *,
                 field: str | None = None, errors: Sequence[Mapping[str, str]] = (),
                 headers: Mapping[str, str] | None = None):
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.errors = list(errors) or ([{"field": field, "detail": detail or self.title}]
                                       if field else [])
        self.headers = dict(headers or {})
        super().__init__(f"{status} {self.title}: {detail}")

    def response(self) -> Response:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title,
                                "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, media_type=MEDIA_TYPE,
                            headers=self.headers)


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "track", "kind")`` as ``track.kind``."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def invalid(errors: Sequence[Mapping[str, str]], status: int = 422) -> Problem:
    """A problem for the fields in ``errors`` (each ``{"field", "detail"}``)."""
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    return Problem(status, "Invalid request", detail, errors=errors)


def install(app: FastAPI, fallback: Any) -> None:
    """Answer problems; outside ``/api/`` an HTTP error goes to ``fallback(request, exc)``."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response()

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": field_path(e.get("loc", ())), "detail": str(e.get("msg", ""))}
                  for e in exc.errors()]
        return invalid(errors).response()

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not request.url.path.startswith(PREFIX):
            return await fallback(request, exc)
        return Problem(exc.status_code, detail=exc.detail if isinstance(exc.detail, str)
                       and exc.detail != HTTPStatus(exc.status_code).phrase else None,
                       headers=getattr(exc, "headers", None)).response()

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
