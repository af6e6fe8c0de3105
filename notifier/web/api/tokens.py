"""Personal access tokens: ``/tokens`` (create from a session; list; revoke).

A token is shown once, when it is created; afterwards only its name, scope,
creation and last use are listed.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from ...errors import InputError
from .auth import Caller, reader, session_only
from .context import ApiContext, context
from .problems import Problem

router = APIRouter(tags=["tokens"])


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scope: Literal["read", "write"] = "read"


@router.get("/tokens")
def list_tokens(caller: Caller = Depends(reader),
                ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """The caller's tokens, by name, with their last use (never the tokens themselves)."""
    return [token.to_dict() for token in ctx.credentials.tokens(caller.name)]


@router.post("/tokens", status_code=201)
def create_token(body: NewToken, caller: Caller = Depends(session_only),
                 ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """A new token; ``token`` is shown this once."""
    try:
        secret, token = ctx.credentials.create_token(caller.name, body.name, body.scope)
    except InputError as exc:
        field, _, detail = str(exc).partition(": ")
        raise Problem(409 if "already has" in detail else 422, "Invalid token", detail,
                      field=field) from exc
    return {**token.to_dict(), "token": secret}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, caller: Caller = Depends(session_only),
                 ctx: ApiContext = Depends(context)) -> Response:
    """Revoke one of the caller's tokens: it stops working at once."""
    if not ctx.credentials.revoke_token(caller.name, token_id):
        raise Problem(404, "No such token", f"{caller.name!r} has no token {token_id}")
    return Response(status_code=204)
