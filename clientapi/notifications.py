"""Notifications: who followed the member (or asked to), mentioned it, liked or
boosted its posts, and the coop's exchange events.

Exchange events have the type ``coopfed_exchange`` (Mastodon apps skip types
they do not know): a peer's offer or pledge on a proposal of the coop, and
every later step of the coop's exchanges.  They come when ``types[]`` is absent
or names them, and carry a ``coopfed_exchange`` object (the exchange, the step,
the states) and, as ``status``, the proposal when the node has it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from clientapi.accounts import account_views, uri_of
from clientapi.common import (
    NOT_FOUND,
    MastoError,
    Params,
    endpoint,
    json_list,
    paging,
    path_id,
    read_params,
)
from clientapi.oauth import authenticate
from clientapi.serializers import iso, notification_json
from clientapi.statuses import render_statuses
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.store import LocalActor, NotificationRow, Paging

TYPES = ("follow", "follow_request", "mention", "favourite", "reblog", "coopfed_exchange")


def wanted_types(params: Params) -> list[str]:
    only = params.many("types")
    excluded = set(params.many("exclude_types"))
    return [t for t in TYPES if (not only or t in only) and t not in excluded]


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def exchange_json(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "exchange_id": str(event["exchange_id"]),
        "event": event["event"],
        "from_state": event["from_state"],
        "to_state": event["to_state"],
        "state": event["state"],
        "proposal": event["proposal_uri"],
        "proposer": event["proposer"],
        "responder": event["responder"],
        "pledge": event["pledge"],
        "quantity": _amount(event["quantity"]),
        "unit": event["unit"],
        "at": iso(event["at"]),
    }


async def notification_rows(
    node: NodeContext,
    member: LocalActor,
    *,
    types: list[str],
    account: str | None,
    page: Paging,
    only_id: int | None = None,
) -> list[NotificationRow]:
    coop = await node.coop_actor()
    me = node.urls.actor(member.username)
    return await node.store.notifications(
        member.id,
        me,
        [me, node.urls.actor(coop.username)],
        types=types,
        account=account,
        paging=page,
        only_id=only_id,
    )


async def render(
    node: NodeContext, member: LocalActor, rows: list[NotificationRow]
) -> list[dict[str, Any]]:
    views = await account_views(node, [r.account for r in rows])
    objects = await node.store.objects_by_uris([r.status for r in rows if r.status])
    visible = [o for o in objects if o.deleted_at is None]
    statuses = dict(
        zip([o.uri for o in visible], await render_statuses(node, member, visible), strict=True)
    )
    rendered = []
    for row in rows:
        status = statuses.get(row.status) if row.status else None
        if row.type in ("mention", "favourite", "reblog") and status is None:
            continue
        event = None
        if row.exchange_id is not None:
            event = await node.store.exchange_notice(row.exchange_id, row.event_id)
        rendered.append(
            notification_json(
                notification_id=row.id,
                type=row.type,
                created_at=row.at,
                account=views[row.account],
                status=status,
                exchange=exchange_json(event) if event else None,
            )
        )
    return rendered


@endpoint
async def list_notifications(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "read:notifications")).member
    params = await read_params(request)
    account_id = params.number("account_id")
    account = await uri_of(node, account_id) if account_id is not None else None
    rows = await notification_rows(
        node,
        member,
        types=wanted_types(params),
        account=account,
        page=paging(params, default=15, maximum=30),
    )
    return json_list(request, await render(node, member, rows), [r.id for r in rows])


@endpoint
async def get_notification(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "read:notifications")).member
    rows = await notification_rows(
        node, member, types=list(TYPES), account=None, page=Paging(), only_id=path_id(request)
    )
    rendered = await render(node, member, rows)
    if not rendered:
        raise MastoError(404, NOT_FOUND)
    return json_response(rendered[0])


@endpoint
async def clear(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:notifications")).member
    now: datetime = node.clock()
    await node.store.clear_notifications(member.id, (int(now.timestamp() * 1000) + 1) << 16)
    return json_response({})


@endpoint
async def dismiss(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:notifications")).member
    await node.store.dismiss_notification(member.id, path_id(request))
    return json_response({})
