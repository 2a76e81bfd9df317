"""The client-to-server API: ``POST /users/{username}/outbox`` and the admin's JSON.

A client (a script, an app, the future admin pages) authenticates with
``Authorization: Bearer <token>`` (``coopfed token create``) and posts an
activity or a bare object; the node does what ``coopfed offer``, ``respond``,
``accept``… do, through the same functions, and answers 201 with the activity
it sent.  Bad input gets 422 naming the field; a step the exchange's state
does not allow gets 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from federation.context import NODE, NodeContext
from federation.credentials import hash_token
from federation.errors import ApiError, error_response, json_response
from federation.jsonld import (
    AP_CONTENT_TYPE,
    as_list,
    contains_nul,
    get_id,
    has_type,
    visibility_of,
)
from federation.shapes import normalise
from federation.store import Exchange, LocalActor
from outbox import market, publish
from outbox.c2s import (
    is_proposal_input,
    kind_of,
    offer_fields,
    proposal_fields,
    text_of,
    wants_close,
)
from outbox.errors import ActionError, InvalidInput, status_of
from outbox.marketview import exchanges_view, market_view, matches_view

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
ACCEPTED_TYPES = frozenset({"application/activity+json", "application/ld+json", "application/json"})
ACTIVITY_TYPES = ("Create", "Update", "Delete", "Offer", "Accept", "Reject", "Undo")


Route = Callable[[web.Request], Awaitable[web.Response]]


def api(route: Route) -> Route:
    """Turn the API's errors into JSON answers with the right status."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await route(request)
        except ApiError as exc:
            return exc.response()
        except InvalidInput as exc:
            return error_response(422, exc.message, field=exc.field)
        except ActionError as exc:
            return error_response(status_of(exc), exc.detail, exc.reason)

    return wrapped


def _unauthorized(reason: str, error: str) -> ApiError:
    # RFC 6750 §3: no error code when the request carried no token at all.
    challenge = 'Bearer realm="coopfed"'
    if reason != "missing_token":
        challenge += ', error="invalid_token"'
    return ApiError(401, error, reason=reason, headers={"WWW-Authenticate": challenge})


async def authenticate(request: web.Request) -> LocalActor:
    """The local actor whose bearer token the request carries; 401 otherwise."""
    node = request.app[NODE]
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing_token", "send Authorization: Bearer <token>")
    token_hash = hash_token(token)
    if node.c2s_limiter is not None:
        # Per token, before the database is asked: a runaway client (or a guesser
        # replaying one token) costs nothing once over its rate.
        wait = node.c2s_limiter.take(token_hash)
        if wait:
            raise ApiError(
                429,
                "too many requests with this token",
                reason="rate_limited",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
    actor_id = await node.store.actor_for_token(token_hash)
    actor = await node.store.get_local_actor_by_id(actor_id) if actor_id is not None else None
    if actor is None:
        raise _unauthorized("invalid_token", "the token is unknown or revoked")
    return actor


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_type not in ACCEPTED_TYPES:
        raise ApiError(
            415,
            "send application/activity+json, application/ld+json or application/json",
            reason="unsupported_media_type",
        )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"the body is over {MAX_BODY} bytes", reason="too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"the body is over {MAX_BODY} bytes", reason="too_large")
        chunks.append(chunk)
    try:
        document = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"invalid JSON: {exc}", reason="bad_json") from exc
    if not isinstance(document, dict):
        raise ApiError(400, "send a JSON object", reason="bad_json")
    if contains_nul(document):
        raise ApiError(400, "\\u0000 cannot be stored", reason="bad_json")
    return document


# -- POST /users/{username}/outbox ---------------------------------------------------


@api
async def handle_outbox_post(request: web.Request) -> web.Response:
    node = request.app[NODE]
    actor = await authenticate(request)
    owner = await node.store.get_local_actor(request.match_info["username"])
    if owner is None or owner.kind == "instance":
        raise ApiError(404, "no such actor", reason="not_found")
    if owner.id != actor.id:
        raise ApiError(403, "this token belongs to another actor", reason="forbidden")
    # A client's activity crosses the same shape boundary as a peer's.
    document = normalise(await read_json(request))
    claimed = get_id(document.get("actor"))
    if claimed is not None and claimed != node.urls.actor(actor.username):
        raise ApiError(403, "the activity's actor is not this outbox's owner", reason="forbidden")
    activity = await perform(node, actor, document)
    headers = {"Location": activity["id"]} if isinstance(activity.get("id"), str) else {}
    return json_response(activity, status=201, content_type=AP_CONTENT_TYPE, headers=headers)


async def perform(node: NodeContext, actor: LocalActor, document: dict[str, Any]) -> dict[str, Any]:
    """Do what the posted activity (or bare object) asks; returns the activity sent."""
    types = [t for t in as_list(document.get("type")) if isinstance(t, str)]
    activity_type = next((t for t in types if t in ACTIVITY_TYPES), None)
    if activity_type is None:
        return await _create(node, actor, document)  # a bare object
    if activity_type == "Create":
        obj = document.get("object")
        if not isinstance(obj, dict):
            raise InvalidInput("object", "must be the object to create")
        if has_type(obj, "Document") and obj.get("name") == "Receipt":
            exchange = await _exchange_of(node, actor, obj.get("context"))
            return await _event_activity(node, await market.complete(node, actor, exchange.id))
        return await _create(node, actor, obj)
    if activity_type == "Update":
        return await _update(node, actor, document)
    if activity_type == "Delete":
        return await _delete(node, actor, document)
    if activity_type == "Offer":
        proposal_uri, quantity, price, message = offer_fields(document)
        exchange = await market.respond(
            node, actor, proposal_uri, quantity=quantity, reciprocal=price, message=message
        )
        return exchange.offer
    reason = text_of("content", document.get("content"))
    if activity_type == "Undo":
        ref = get_id(document.get("object"))
        if ref and not ref.isdigit() and await node.store.find_exchange(offer_id=ref) is None:
            return await publish.undo(node, actor, ref)  # a Like or an Announce
    exchange = await _exchange_of(node, actor, document.get("object"))
    if activity_type == "Accept":
        moved = await market.accept(node, actor, exchange.id)
    elif activity_type == "Reject":
        moved = await market.reject(node, actor, exchange.id, reason)
    else:
        moved = await market.withdraw(node, actor, exchange.id)
    return await _event_activity(node, moved)


async def _create(node: NodeContext, actor: LocalActor, obj: dict[str, Any]) -> dict[str, Any]:
    if is_proposal_input(obj):
        raw = proposal_fields(obj)
        kind = kind_of(obj)
        if kind is not None:
            raw["kind"] = kind
        return await market.publish_proposal(node, actor, raw)
    if has_type(obj, "Note"):
        text = text_of("content", obj.get("content")).strip()
        if not text:
            raise InvalidInput("content", "is required")
        visibility = "public"
        if "to" in obj or "cc" in obj:
            visibility = visibility_of(obj, node.urls.followers(actor.username))
        return await publish.post_note(
            node, actor, text, visibility=visibility, in_reply_to=get_id(obj.get("inReplyTo"))
        )
    given = ", ".join(str(t) for t in as_list(obj.get("type"))) or "none"
    raise InvalidInput(
        "type",
        f"unsupported type {given}: post a Proposal, a Note, or Create, Update, Delete, "
        "Offer, Accept, Reject or Undo",
    )


async def _update(node: NodeContext, actor: LocalActor, document: dict[str, Any]) -> dict[str, Any]:
    obj = document.get("object")
    if isinstance(obj, dict) and has_type(obj, "Agreement"):
        exchange = await _exchange_of(node, actor, obj)
        status = obj.get("agreementStatus")
        if status == "cancelled":
            reason = text_of("content", document.get("content", obj.get("content")))
            moved = await market.cancel(node, actor, exchange.id, reason)
        elif status == "completed":
            moved = await market.complete(node, actor, exchange.id)
        else:
            raise InvalidInput("agreementStatus", "must be cancelled or completed")
        return await _event_activity(node, moved)
    uri = get_id(obj)
    if not uri:
        raise InvalidInput("object", "must name the proposal to update")
    proposal = await node.store.get_proposal(uri)
    if proposal is None:
        raise ActionError("not_found", f"no proposal of ours at {uri}")
    if isinstance(obj, dict) and wants_close(obj):
        return await market.close_proposal(node, actor, uri)
    changes = proposal_fields(obj) if isinstance(obj, dict) else {}
    if (
        isinstance(obj, dict)
        and "details" not in obj
        and obj.get("content") == proposal.body.get("content")
    ):
        changes.pop("details", None)  # the object sent back as it was fetched
    return await market.update_proposal(node, actor, uri, changes)


async def _delete(node: NodeContext, actor: LocalActor, document: dict[str, Any]) -> dict[str, Any]:
    uri = get_id(document.get("object"))
    if not uri:
        raise InvalidInput("object", "must name what to delete")
    proposal = await node.store.get_proposal(uri)
    if proposal is not None and proposal.local:
        return await market.delete_proposal(node, actor, uri)
    return await publish.delete_post(node, actor, uri)


async def _exchange_of(node: NodeContext, actor: LocalActor, value: Any) -> Exchange:
    """One of the actor's exchanges, by its number, its Offer's id or its Agreement's id."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    if number is not None:
        in_range = 0 < number < 2**63  # a bigint
        exchange = await node.store.get_exchange(number) if in_range else None
    else:
        ref = get_id(value)
        if not ref:
            raise InvalidInput("object", "must name the offer, agreement or exchange")
        exchange = await node.store.find_exchange(offer_id=ref, agreement_uri=ref)
    if exchange is None or node.urls.actor(actor.username) not in (
        exchange.proposer,
        exchange.responder,
    ):
        raise ActionError("not_found", f"no exchange {value}")
    return exchange


async def _event_activity(node: NodeContext, exchange: Exchange) -> dict[str, Any]:
    """The activity the exchange's last step sent."""
    events = await node.store.exchange_events(exchange.id)
    for event in reversed(events):
        if event["activity_id"] and event["to_state"] == exchange.state:
            stored = await node.store.get_outbox_activity(event["activity_id"])
            if stored is not None:
                body: dict[str, Any] = stored["body"]
                return body
    raise ActionError("not_found", f"exchange {exchange.id} has no recorded activity")


# -- the admin's JSON ---------------------------------------------------------------


@api
async def handle_market(request: web.Request) -> web.Response:
    await authenticate(request)
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError as exc:
        raise InvalidInput("limit", "must be a whole number") from exc
    items = await market_view(
        request.app[NODE],
        kind=query.get("kind") or None,
        tag=query.get("tag") or None,
        text=query.get("text") or None,
        coop=query.get("coop") or None,
        status=query.get("status") or None,
        limit=limit,
    )
    return json_response(items)


@api
async def handle_matches(request: web.Request) -> web.Response:
    await authenticate(request)
    return json_response(await matches_view(request.app[NODE]))


@api
async def handle_exchanges(request: web.Request) -> web.Response:
    await authenticate(request)
    state = request.query.get("state") or None
    return json_response(await exchanges_view(request.app[NODE], state))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/users/{username}/outbox", handle_outbox_post)
    app.router.add_get("/api/market", handle_market)
    app.router.add_get("/api/matches", handle_matches)
    app.router.add_get("/api/exchanges", handle_exchanges)
