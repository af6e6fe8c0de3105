"""Errors of the API, as ``application/problem+json`` (RFC 9457).

Raise :class:`Problem` from a route; :func:`install` makes FastAPI answer
it, a request that fails validation, and any HTTP error under ``/api/v1``
in that form. A problem about a field names its path (``track.kind``,
``filters.severities[1]``) in ``errors[].field``::

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
from starlette.concurrency import run_in_threadpool
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
    """``("body", "track", "kind")`` as ``track.kind``; a list index as ``[1]``.

    The form the rules' own validation writes (``filters.severities[1]``), so
    that every error of the API names a field the same way.
    """
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def invalid(errors: Sequence[Mapping[str, str]], status: int = 422) -> Problem:
    """A problem for the fields in ``errors`` (each ``{"field", "detail"}``)."""
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    return Problem(status, "Invalid request", detail, errors=errors)


def _caller_checks(dependant: Any) -> list[Any]:
    found = []
    for sub in getattr(dependant, "dependencies", ()):
        check = getattr(sub.call, "before_body", None)
        found += [check] if check is not None else _caller_checks(sub)
    return found


def check_caller(request: Request) -> None:
    """Run the matched route's checks of its caller now; :class:`Problem` if they refuse.

    FastAPI parses a JSON body before it runs a route's dependencies, so a
    malformed body would be answered 422 to anybody. The dependencies that
    check the caller (:mod:`.auth`) carry ``before_body(request)``; run here
    first, they refuse whoever the route refuses (401, 403, 429), who then
    learns nothing of the body. A public route has none.
    """
    for check in _caller_checks(getattr(request.scope.get("route"), "dependant", None)):
        check(request)


def install(app: FastAPI, fallback: Any) -> None:
    """Answer problems; outside ``/api/`` an HTTP error goes to ``fallback(request, exc)``."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response()

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        unreadable = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if unreadable:
            try:
                await run_in_threadpool(check_caller, request)
            except Problem as refused:
                return refused.response()
            return invalid([{"field": "body", "detail": "not JSON: " + "; ".join(
                f"{(e.get('ctx') or {}).get('error', e.get('msg'))} at character "
                f"{e.get('loc', ('', '?'))[-1]}" for e in unreadable)}]).response()
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
