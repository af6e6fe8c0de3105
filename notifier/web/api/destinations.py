"""The caller's destinations (``/destinations``) and delivery settings (``/delivery``).

=======================================  ==============================================
``GET /destinations``                    every email address, IRC nick and Matrix id, with its state
``POST /destinations``                   add one: ``{"kind": "email"|"irc"|"matrix", "address"}``
``POST /destinations/{id}/verify``       an IRC nick's or Matrix id's code: ``{"code": "..."}``
``POST /destinations/{id}/resend``       a new link or code (the old one stops working)
``DELETE /destinations/{id}``            remove one the caller added
``GET /delivery``, ``PUT /delivery``     digests per destination, and which address
=======================================  ==============================================

Addresses from the caller's account (the identity provider, ``notifier users
import``) are verified already. One the caller adds is pending, and never
sent to, until proved (see :mod:`notifier.storage.destinations`):

* an email address gets a mail with a link to ``/destinations/verify/<secret>``
  (a page with a button, :mod:`notifier.web.verify`), valid 24 hours;
* an IRC nick gets a private message with a code, valid an hour, which the
  caller enters here; five wrong codes spend it. The message goes out over a
  short connection of its own, made with ``[irc]``, so the code is kept
  nowhere but in that message;
* a Matrix user id (``@name:server``) gets the same kind of code as a direct
  message from the ``[matrix]`` bot.

Addresses are checked as in user records; ``PUT /delivery`` takes the
``delivery`` object of a user record, checked the same way, and may name
only verified addresses. Another user's destination is a 404. Every change
goes through the change log: a running ``notifier serve`` applies it within
about a second.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, Field

from ...config import Config
from ...errors import ConfigError, DeliveryError, PermanentDeliveryError
from ...notification import Notification
from ...storage.destinations import (
    CODE_TTL,
    KINDS,
    LINK_TTL,
    SETTING_KEYS,
    Destination,
    DestinationError,
    Destinations,
)
from ...users.settings import (
    DESTINATION_KEYS,
    QUIET_HOURS,
    check_delivery,
    email_problem,
    matrix_id_problem,
    nick_problem,
)
from .auth import Caller, limited, reader, writer
from .context import ApiContext, context
from .problems import Problem, invalid

router = APIRouter(tags=["destinations"])

#: seconds the IRC server gets to take a code
IRC_SEND_TIMEOUT = 10.0
_CHECKS: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "email": ("an email address", email_problem), "irc": ("an IRC nick", nick_problem),
    "matrix": ("a Matrix user id", matrix_id_problem)}


class NewDestination(BaseModel):
    kind: Literal["email", "irc", "matrix"]
    address: str = Field(min_length=1, max_length=320)


class Code(BaseModel):
    code: str = Field(min_length=1, max_length=200)


class DestinationOut(BaseModel):
    id: int
    kind: str
    address: str
    #: pending, verified
    state: str
    #: record (the account: identity provider or import), person (added through the API)
    origin: str
    created_at: float
    verified_at: float | None
    #: when the current link or code stops working
    expires_at: float | None


def send_irc(config: Config, nick: str, text: str) -> None:
    """One private message to ``nick``, over a connection of its own made with ``[irc]``."""
    from ...backends.irc import IrcBackend

    backend = IrcBackend(config, send_timeout=IRC_SEND_TIMEOUT)
    try:
        backend.send(Notification(user=nick, destination="irc", address=nick,
                                  msg_id="notifier-verification", topic="notifier.account",
                                  app="notifier", content={"line": text}))
    finally:
        backend.close()


def send_matrix(config: Config, user_id: str, text: str) -> None:
    """One direct message to ``user_id`` from the ``[matrix]`` bot."""
    from ...backends.matrix import MatrixBackend

    backend = MatrixBackend(config)
    try:
        # Its own message id: a resent code must not look like a retry of the last one.
        backend.send(Notification(user=user_id, destination="matrix", address=user_id,
                                  msg_id=f"notifier-verification-{secrets.token_hex(8)}",
                                  topic="notifier.account", app="notifier",
                                  content={"body": text}))
    finally:
        backend.close()


def _store(ctx: ApiContext) -> Destinations:
    return Destinations(ctx.store, clock=ctx.clock)


def _own(ctx: ApiContext, caller: Caller, ident: int) -> Destination:
    found = _store(ctx).get(caller.name, ident)
    if found is None:
        raise Problem(404, "No such destination", f"you have no destination {ident}")
    return found


def _send(ctx: ApiContext, user: str, destination: Destination, secret: str) -> None:
    """Send the link or the code; a :class:`Problem` when it cannot go out.

    Sends to one address count against a rate of their own, as sign-in mails do.
    """
    limited(ctx.user_limit.hit(f"destination-{destination.kind}:"
                               f"{destination.address.lower()}"), "to this address")
    if destination.kind == "email":
        link = f"{ctx.config.http.public_url()}/destinations/verify/{secret}"
        ctx.mail(destination.address, "Confirm your address for notifications", (
            f"Someone, probably you ({user}), asked to get notifications at this address.\n\n"
            f"To confirm, open this link and press the button (within "
            f"{LINK_TTL // 3600} hours):\n\n{link}\n\n"
            f"If it was not you, ignore this mail: nothing is sent here unless confirmed.\n"),
            user=user)
        return
    if destination.kind == "matrix":
        text = (f"Your notifier code for {user}: {secret} (enter it where you added this "
                f"Matrix id; valid {CODE_TTL // 60} minutes)")
        try:
            send_matrix(ctx.config, destination.address, text)
        except PermanentDeliveryError as exc:
            raise Problem(422, "Code not sent", f"the homeserver refused the message to "
                          f"{destination.address!r}: {exc}", field="address") from exc
        except (DeliveryError, ConfigError) as exc:
            raise Problem(503, "Code not sent", f"the Matrix homeserver cannot be reached "
                          f"now: {exc}") from exc
        return
    text = (f"Your notifier code for {user}: {secret} (enter it where you added this nick; "
            f"valid {CODE_TTL // 60} minutes)")
    try:
        send_irc(ctx.config, destination.address, text)
    except PermanentDeliveryError as exc:
        raise Problem(422, "Code not sent", f"the IRC server refused the message to "
                      f"{destination.address!r} (connect with that nick and try again): {exc}",
                      field="address") from exc
    except (DeliveryError, ConfigError) as exc:
        raise Problem(503, "Code not sent", f"the IRC server cannot be reached now: {exc}"
                      ) from exc


def _refused(exc: DestinationError, field: str | None = None) -> Problem:
    status = {"exists": 409, "too-many": 409, "from-record": 409, "not-pending": 409,
              "spent": 409, "expired": 409, "too-soon": 429, "wrong": 422}.get(exc.reason, 422)
    headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))} \
        if exc.reason == "too-soon" else None
    return Problem(status, "Destination not changed", str(exc), field=field, headers=headers)


@router.get("/destinations", response_model=list[DestinationOut])
def list_destinations(caller: Caller = Depends(reader),
                      ctx: ApiContext = Depends(context)) -> list[dict[str, Any]]:
    """Every email address, IRC nick and Matrix id of the caller, oldest first; only
    verified ones are sent to."""
    return [d.to_dict() for d in _store(ctx).listing(caller.name)]


@router.post("/destinations", status_code=201, response_model=DestinationOut)
def add_destination(body: NewDestination, response: Response,
                    caller: Caller = Depends(writer),
                    ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Add an address (pending); a confirmation link or a code is sent to it."""
    what, problem = _CHECKS[body.kind]
    why = problem(body.address)
    if why:
        raise invalid([{"field": "address",
                        "detail": f"{body.address!r} is not {what}: {why}"}])
    if body.kind == "irc" and not ctx.config.irc.host:
        raise invalid([{"field": "kind", "detail": "this service sends no IRC messages "
                        "(no [irc] host configured)"}])
    if body.kind == "matrix" and not ctx.config.matrix.homeserver:
        raise invalid([{"field": "kind", "detail": "this service sends no Matrix messages "
                        "(no [matrix] homeserver configured)"}])
    store = _store(ctx)
    try:
        added, secret = store.add(caller.name, body.kind, body.address)
    except DestinationError as exc:
        raise _refused(exc, "address") from exc
    try:
        _send(ctx, caller.name, added, secret)
    except Problem:
        store.remove(caller.name, added.id)  # nothing reached it: as if never added
        raise
    response.headers["Location"] = f"/api/v1/destinations/{added.id}"
    return added.to_dict()


@router.post("/destinations/{destination_id}/verify", response_model=DestinationOut)
def verify_destination(destination_id: int, body: Code, caller: Caller = Depends(writer),
                       ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Verify an IRC nick or a Matrix id with the code it was sent; an email address is
    confirmed by its link."""
    found = _own(ctx, caller, destination_id)
    if found.kind == "email":
        raise Problem(409, "Confirmed by link", "an email address is confirmed by the link "
                      "mailed to it; ask for a new one with .../resend", field="code")
    try:
        verified = _store(ctx).confirm_code(caller.name, destination_id, body.code)
    except DestinationError as exc:
        raise _refused(exc, "code") from exc
    if verified is None:
        raise Problem(404, "No such destination", f"you have no destination {destination_id}")
    ctx.changed()
    return verified.to_dict()


@router.post("/destinations/{destination_id}/resend", status_code=202,
             response_model=DestinationOut)
def resend(destination_id: int, caller: Caller = Depends(writer),
           ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Send a new link or code to a pending destination; the previous one stops working."""
    _own(ctx, caller, destination_id)
    try:
        renewed = _store(ctx).renew(caller.name, destination_id)
    except DestinationError as exc:
        raise _refused(exc) from exc
    if renewed is None:
        raise Problem(404, "No such destination", f"you have no destination {destination_id}")
    destination, secret = renewed
    _send(ctx, caller.name, destination, secret)
    return destination.to_dict()


@router.delete("/destinations/{destination_id}", status_code=204)
def remove_destination(destination_id: int, caller: Caller = Depends(writer),
                       ctx: ApiContext = Depends(context)) -> Response:
    """Remove an address the caller added (and a delivery setting naming it)."""
    try:
        removed = _store(ctx).remove(caller.name, destination_id)
    except DestinationError as exc:
        raise _refused(exc) from exc
    if not removed:
        raise Problem(404, "No such destination", f"you have no destination {destination_id}")
    ctx.changed()
    return Response(status_code=204)


# -- delivery settings -------------------------------------------------------------

DELIVERY_EXAMPLE = {"email": {"address": "alice@example.org",
                              "digest": {"every": "1h", "max_items": 100}},
                    "irc": {"nick": "alice", "digest": None},
                    "rss": None, "desktop": {"digest": {"every": "daily@08:00"}},
                    "webpush": None, "matrix": {"user_id": "@alice:example.org", "digest": None},
                    QUIET_HOURS: {"start": "22:00", "end": "07:00", "timezone": "Europe/Prague"}}


def _delivery_out(delivery: Any) -> dict[str, Any]:
    stored = delivery if isinstance(delivery, dict) else {}
    return {**{kind: stored.get(kind) for kind in DESTINATION_KEYS},
            QUIET_HOURS: stored.get(QUIET_HOURS)}


@router.get("/delivery")
def get_delivery(caller: Caller = Depends(reader),
                 ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The caller's delivery settings, per destination (null: at once, to the first
    verified address)."""
    return _delivery_out(_store(ctx).delivery(caller.name))


@router.put("/delivery")
def put_delivery(data: Any = Body(examples=[DELIVERY_EXAMPLE]),
                 caller: Caller = Depends(writer),
                 ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Replace the caller's delivery settings, checked as ``notifier users import`` checks
    them; an ``address`` or ``nick`` must be one of the caller's verified ones.
    ``quiet_hours`` left out keeps the caller's (null: none)."""
    errors: list[dict[str, str]] = []

    def fail(path: str, message: str) -> None:
        field = path.removeprefix("delivery").removeprefix(".") or "body"
        errors.append({"field": field, "detail": message})

    check_delivery(data, fail)
    if data is None:
        errors.append({"field": "body", "detail": "send an object; {} means the defaults"})
    if errors:
        raise invalid(errors)
    store = _store(ctx)
    for kind in KINDS:
        settings = data.get(kind)
        chosen = settings.get(SETTING_KEYS[kind]) if isinstance(settings, dict) else None
        if chosen is not None and chosen not in store.verified_addresses(caller.name, kind):
            errors.append({"field": f"{kind}.{SETTING_KEYS[kind]}",
                           "detail": f"{chosen!r} is not one of your verified {kind} "
                                     f"destinations; add it and verify it first"})
    if errors:
        raise invalid(errors)
    if QUIET_HOURS not in data:
        stored = store.delivery(caller.name)
        if isinstance(stored, dict) and stored.get(QUIET_HOURS) is not None:
            data = {**data, QUIET_HOURS: stored[QUIET_HOURS]}
    delivery = {kind: value for kind, value in data.items() if value is not None} or None
    if not store.set_delivery(caller.name, delivery):
        raise Problem(404, "No such user", f"{caller.name!r} has no user record")
    ctx.changed()
    return _delivery_out(delivery)

