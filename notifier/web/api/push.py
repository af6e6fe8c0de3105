"""Web Push subscriptions: ``/push/key`` and ``/push/subscriptions``.

A page subscribes the browser with the service's VAPID public key
(``GET /push/key``, the ``applicationServerKey``), then posts the
``PushSubscription`` the browser gave it, as its ``toJSON()`` writes it::

    {"endpoint": "https://push.example.net/...", "expirationTime": null,
     "keys": {"p256dh": "<base64url>", "auth": "<base64url>"}}

with, optionally, a ``label`` the person will recognise the browser by (else
the request's ``User-Agent``). Posting the same endpoint again renews it.
The endpoint must be https on a public address, and the keys of the right
lengths (see :mod:`notifier.storage.push`); else 422 naming the field. The
webpush destination of the caller's rules then reaches every browser listed
by ``GET /push/subscriptions``; ``DELETE /push/subscriptions/{id}`` removes
one. Another user's subscription is answered 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ...errors import InputError
from ...storage.push import MAX_ENDPOINT, PushSubscriptions, application_server_key
from .auth import Caller, reader, writer
from .context import ApiContext, context
from .problems import Problem

router = APIRouter(tags=["push"])


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=128)
    auth: str = Field(min_length=1, max_length=64)


class NewSubscription(BaseModel):
    """A browser's ``PushSubscription.toJSON()``, and an optional label."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT)
    keys: SubscriptionKeys
    expirationTime: float | None = None  # the browser's own name
    label: str | None = Field(default=None, max_length=200)


def _subscriptions(ctx: ApiContext) -> PushSubscriptions:
    return PushSubscriptions(ctx.store, clock=ctx.clock)


@router.get("/push/key")
def vapid_key(caller: Caller = Depends(reader),
              ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The VAPID public key a page subscribes with (``applicationServerKey``), base64url."""
    key = application_server_key(_subscriptions(ctx).vapid_key())
    return {"key": key, "enabled": bool(ctx.config.webpush.contact)}


@router.get("/push/subscriptions")
def list_subscriptions(caller: Caller = Depends(reader),
                       ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """The caller's subscribed browsers, oldest first (never their keys)."""
    return [sub.to_dict() for sub in _subscriptions(ctx).list(caller.name)]


@router.post("/push/subscriptions", status_code=201)
def add_subscription(body: NewSubscription, request: Request,
                     caller: Caller = Depends(writer),
                     ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Subscribe a browser (or renew its subscription) for the caller's webpush destination."""
    label = body.label or request.headers.get("User-Agent")
    try:
        sub = _subscriptions(ctx).add(
            caller.name, body.endpoint, body.keys.p256dh, body.keys.auth, label,
            allow_private=ctx.config.webpush.allow_private_endpoints)
    except InputError as exc:
        field, _, detail = str(exc).partition(": ")
        raise Problem(422, "Invalid push subscription", detail or str(exc),
                      field=field if detail else "body") from exc
    return sub.to_dict()


@router.delete("/push/subscriptions/{subscription_id}", status_code=204)
def remove_subscription(subscription_id: int, caller: Caller = Depends(writer),
                        ctx: ApiContext = Depends(context)) -> Response:
    """Unsubscribe one of the caller's browsers."""
    if not _subscriptions(ctx).remove(caller.name, subscription_id):
        raise Problem(404, "No such subscription",
                      f"{caller.name!r} has no push subscription {subscription_id}")
    return Response(status_code=204)
