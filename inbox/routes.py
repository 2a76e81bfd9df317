"""The inbox: verify, de-duplicate, persist, answer 202.  Workers do the rest."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from federation.context import NODE, NodeContext
from federation.errors import ApiError, error_response, json_response
from federation.jsonld import contains_nul
from federation.languages import keep_languages
from federation.proxies import client_address
from federation.store.activities import QUEUE_FULL
from inbox.verify import InboxRejected, is_self_delete, read_head, read_signature, verify_inbox_post

log = logging.getLogger(__name__)

MAX_BODY = 1_048_576  # Mastodon's MAX_JSON_SIZE
MAX_DEPTH = 32
ACCEPTED_TYPES = frozenset({"application/activity+json", "application/ld+json"})
# What a remote server is told: the reason code and one of these texts.  The
# detail (which may name addresses, keys or internal state) only goes to the log.
PUBLIC_TEXTS = {
    400: "the request is malformed",
    401: "the request's signature could not be verified",
    403: "this request is not allowed",
    404: "no such actor",
    410: "this actor is gone",
    413: "the body is too large",
    415: "send application/activity+json or application/ld+json",
    429: "too many requests, try again later",
    503: "the signer's key could not be fetched now, try again later",
}


async def read_capped_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise InboxRejected(413, "too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise InboxRejected(413, "too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def nesting_depth(value: object, limit: int) -> int:
    """How deep the JSON nests, stopping once past ``limit``."""
    depth = 0
    level: list[object] = [value]
    while level and depth <= limit:
        nxt: list[object] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        if nxt:
            depth += 1
        level = nxt
    return depth


async def handle_inbox(request: web.Request) -> web.Response:
    try:
        return await _receive(request)
    except InboxRejected as exc:
        request.app[NODE].metrics.count_rejection(exc.reason)
        log.info("inbox refused %s (%d): %s", exc.reason, exc.status, exc.detail)
        text = PUBLIC_TEXTS.get(exc.status, "the request was refused")
        response = error_response(exc.status, text, exc.reason)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response


async def _receive(request: web.Request) -> web.Response:
    node = request.app[NODE]
    local_actor_id: int | None = None
    username = request.match_info.get("username")
    if username is not None:
        actor = await node.store.get_local_actor(username)
        if actor is None or actor.kind == "instance":
            raise ApiError(404, "no such actor", reason="not_found")
        if actor.deleted_at is not None:
            raise InboxRejected(410, "actor_deleted", "this actor was deleted")
        local_actor_id = actor.id
    elif await node.store.coop_deleted():
        # The coop is gone (coopfed delete-coop) and no member is left to receive.
        raise InboxRejected(410, "actor_deleted", "this node's coop was deleted")
    if request.content_type not in ACCEPTED_TYPES:
        raise InboxRejected(
            415,
            "unsupported_media_type",
            "send application/activity+json or application/ld+json",
        )
    body = await read_capped_body(request, MAX_BODY)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InboxRejected(400, "bad_json", str(exc)) from exc
    if nesting_depth(document, MAX_DEPTH) > MAX_DEPTH:
        raise InboxRejected(400, "too_deep", f"JSON nests deeper than {MAX_DEPTH}")
    if b"\\u0000" in body and contains_nul(document):
        raise InboxRejected(400, "bad_json", "\\u0000 cannot be stored")
    head = read_head(document, body)
    if node.urls.is_local(head.actor):
        # Our own actors never deliver to this inbox: whoever claims one is lying.
        raise InboxRejected(400, "local_actor", "the actor is on this node's origin")
    actor_host = urlsplit(head.actor).hostname or ""
    if node.blocks.is_blocked(actor_host):
        raise InboxRejected(403, "blocked_domain", actor_host)
    # Before verification the claimed actor's host proves nothing: limit the peer.
    peer = client_address(request.remote, request.headers, node.settings.trusted_networks)
    _limit(node, f"peer:{peer}", peer)
    parsed = read_signature(node, request.method, request.path_qs, request.headers)
    if is_self_delete(document, head) and head.type == "Delete":
        known = await node.store.get_remote_actor(head.actor)
        if known is None or known.gone:
            # Mastodon's early 202: an actor we never knew is gone; fetching its
            # key would only fail.  Nothing to store.
            return json_response({"status": "ignored"}, status=202)
    try:
        await verify_inbox_post(node, parsed=parsed, head=head, body=body, peer=peer)
    except InboxRejected as exc:
        if exc.reason == "key_gone" and is_self_delete(document, head):
            # A Delete or Update of an actor whose key is gone (404/410): the
            # actor no longer exists; acknowledge it, as Mastodon does.
            await node.store.mark_remote_actor_gone(head.actor)
            return json_response({"status": "ignored"}, status=202)
        raise
    _limit(node, f"host:{actor_host}", actor_host)  # the actor's host, now verified
    result = await node.store.accept_inbox_activity(
        activity_id=head.id,
        actor=head.actor,
        type=head.type,
        # jsonb reorders keys: the first language of contentMap is read now.
        body=keep_languages(document),
        local_actor_id=local_actor_id,
        max_attempts=node.settings.max_inbox_attempts,
        max_pending=node.settings.max_pending_per_actor,
    )
    if result == QUEUE_FULL:
        raise InboxRejected(
            429,
            "actor_queue_full",
            f"{head.actor} has {node.settings.max_pending_per_actor} activities waiting",
            retry_after=60,
        )
    node.metrics.inbox_accepted += 1
    return json_response({"status": result}, status=202)


def _limit(node: NodeContext, key: str, who: str) -> None:
    if node.inbox_limiter is not None:
        wait = node.inbox_limiter.take(key)
        if wait:
            raise InboxRejected(
                429, "rate_limited", f"too many requests from {who}", retry_after=wait
            )


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/inbox", handle_inbox)
    app.router.add_post("/actor/inbox", handle_inbox)
    app.router.add_post("/users/{username}/inbox", handle_inbox)
