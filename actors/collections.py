"""Followers, following and outbox as paged ``OrderedCollection``s."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.context import NodeContext
from federation.errors import ApiError
from federation.jsonld import build_context
from federation.store import LocalActor
from federation.vocab import proposal_context

PAGE_SIZE = 50
MAX_PAGE = 10_000


def build_collection(collection_id: str, total: int, *, first: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": build_context(),
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first is not None:
        document["first"] = first
    return document


def build_page(
    page_id: str,
    collection_id: str,
    items: list[Any],
    *,
    next_id: str | None,
    prev_id: str | None = None,
    context: list[Any] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": context or build_context(),
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if next_id is not None:
        document["next"] = next_id
    if prev_id is not None:
        document["prev"] = prev_id
    return document


def build_outbox_page(
    page_id: str, collection_id: str, items: list[Any], *, next_id: str | None
) -> dict[str, Any]:
    """An outbox page: its items lose their own ``@context``, so the page's defines the
    marketplace terms too (a JSON-LD reader would drop the proposals' fields otherwise)."""
    return build_page(page_id, collection_id, items, next_id=next_id, context=proposal_context())


def parse_page_number(raw: str | None) -> int | None:
    if raw is None:
        return None
    # isascii: str.isdigit() is true of "²" and "١" too, which int() refuses or reads.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(400, "page must be a number from 1", reason="bad_page")
    return int(raw)


async def follow_collection(
    node: NodeContext, actor: LocalActor, direction: str, page: int | None
) -> dict[str, Any]:
    urls = node.urls
    collection_id = (
        urls.followers(actor.username) if direction == "inbound" else urls.following(actor.username)
    )
    total = await node.store.count_follows(actor.id, direction)
    if page is None:
        return build_collection(collection_id, total, first=f"{collection_id}?page=1")
    follows = await node.store.list_follows(
        actor.id, direction, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    items = [f.remote_actor for f in follows[:PAGE_SIZE]]
    next_id = f"{collection_id}?page={page + 1}" if len(follows) > PAGE_SIZE else None
    prev_id = f"{collection_id}?page={page - 1}" if page > 1 else None
    return build_page(
        f"{collection_id}?page={page}", collection_id, items, next_id=next_id, prev_id=prev_id
    )


async def outbox_collection(
    node: NodeContext, actor: LocalActor, request: web.Request
) -> dict[str, Any]:
    collection_id = node.urls.outbox(actor.username)
    total = await node.store.count_outbox(actor.id)
    if "page" not in request.query and "before" not in request.query:
        return build_collection(collection_id, total, first=f"{collection_id}?page=true")
    raw_before = request.query.get("before")
    before: int | None = None
    if raw_before is not None:
        # A bigint: a longer number would make PostgreSQL refuse the query (a 500).
        if not (raw_before.isascii() and raw_before.isdigit()) or len(raw_before) > 18:
            raise ApiError(400, "before must be a number", reason="bad_page")
        before = int(raw_before)
    rows = await node.store.list_outbox(actor.id, before_seq=before, limit=PAGE_SIZE + 1)
    items = [_without_context(body) for _, body in rows[:PAGE_SIZE]]
    next_id = f"{collection_id}?before={rows[PAGE_SIZE - 1][0]}" if len(rows) > PAGE_SIZE else None
    page_id = (
        f"{collection_id}?before={before}" if before is not None else f"{collection_id}?page=true"
    )
    return build_outbox_page(page_id, collection_id, items, next_id=next_id)


def _without_context(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "@context"}
