"""What the marketplace tests across real nodes share: following, waiting for an
exchange to reach a state, reading its trail and what each node emitted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from federation.store import Exchange, InboxActivity, Proposal
from outbox import market
from outbox.publish import follow
from tests.support.nodes import RunningNode, eventually
from tests.support.vocabcheck import independent_parse, little_boxes_backend, vocabulary_problems


async def _follow(follower: RunningNode, followee: RunningNode) -> None:
    coop = await follower.ctx.coop_actor()
    await follow(follower.ctx, coop, followee.handle)

    async def accepted() -> bool:
        return bool(await follower.ctx.store.list_follows(coop.id, "outbound"))

    await eventually(accepted, message=f"{followee.name} accepts {follower.name}")


# -- helpers for the exchange flows ------------------------------------------------------

NEED: dict[str, Any] = {
    "kind": "need",
    "title": "Organic flour",
    "quantity": "200",
    "unit": "kilogram",
    "tags": ["flour", "bakery"],
    "resource": "flour",
}


def _in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def _seen(n: RunningNode, uri: str) -> Proposal:
    async def probe() -> Proposal | None:
        return await n.ctx.store.get_proposal(uri)

    found = await eventually(probe, message=f"{n.name} stores {uri}")
    assert found is not None
    return found


async def _only_exchange(n: RunningNode) -> Exchange:
    async def probe() -> Exchange | None:
        rows = await n.ctx.store.list_exchanges()
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    found = await eventually(probe, message=f"{n.name} records the exchange")
    assert found is not None
    return found


async def _in_state(n: RunningNode, exchange_id: int, state: str) -> Exchange:
    async def probe() -> Exchange | None:
        row = await n.ctx.store.get_exchange(exchange_id)
        return row if row is not None and row.state == state else None

    found = await eventually(probe, message=f"exchange {exchange_id} {state} at {n.name}")
    assert found is not None
    return found


Step = tuple[str, str, str | None, str, str | None]


async def _trail(n: RunningNode, exchange_id: int) -> list[Step]:
    """(event, from, to, by, refused) of every step, applied or refused."""
    rows = await n.ctx.store.exchange_events(exchange_id)
    return [(r["event"], r["from_state"], r["to_state"], r["by_actor"], r["refused"]) for r in rows]


async def _activity_of(n: RunningNode, exchange_id: int, event: str) -> str:
    """The id of the activity that carried ``event`` of an exchange at ``n``."""
    for row in await n.ctx.store.exchange_events(exchange_id):
        if row["event"] == event and row["refused"] is None:
            return str(row["activity_id"])
    raise AssertionError(f"no {event} at {n.name}")


async def _need_with_offer(a: RunningNode, b: RunningNode) -> tuple[str, Exchange, Exchange]:
    """B follows A, A publishes NEED, B offers 50 kg for 120 €: (uri, at A, at B)."""
    await _follow(b, a)
    create = await market.publish_proposal(
        a.ctx, await a.ctx.coop_actor(), NEED | {"deadline": _in_days(1)}
    )
    uri = create["object"]["id"]
    await _seen(b, uri)
    at_b = await market.respond(
        b.ctx, await b.ctx.coop_actor(), uri, quantity=Decimal(50), reciprocal=Decimal(120)
    )
    at_a = await _only_exchange(a)
    return uri, at_a, at_b


async def _accepted(a: RunningNode, b: RunningNode) -> tuple[str, Exchange, Exchange]:
    uri, at_a, at_b = await _need_with_offer(a, b)
    at_a = await market.accept(a.ctx, await a.ctx.coop_actor(), at_a.id)
    at_b = await _in_state(b, at_b.id, "accepted")
    return uri, at_a, at_b


async def _emitted(n: RunningNode) -> list[dict[str, Any]]:
    rows = await n.ctx.store.pool.fetch("SELECT body FROM outbox_activities ORDER BY seq")
    return [dict(r["body"]) for r in rows]


async def _inbox_item(n: RunningNode, activity_id: str) -> InboxActivity:
    inbox_id = await n.ctx.store.pool.fetchval(
        "SELECT id FROM inbox_activities WHERE activity_id = $1", activity_id
    )
    item = await n.ctx.store.get_inbox_activity(int(inbox_id))
    assert item is not None
    return item


SHARED = ("offer_id", "proposal_uri", "proposer", "responder", "state", "pledge", "quantity",
          "unit", "reciprocal_quantity", "reciprocal_unit", "message", "agreement_uri",
          "agreement", "receipt")  # fmt: skip


def _shared(exchange: Exchange) -> dict[str, Any]:
    return {name: getattr(exchange, name) for name in SHARED}


async def _all_emitted_valid(*ns: RunningNode) -> set[str]:
    """Every activity the nodes sent passes the vocabulary check and an independent
    parser (little-boxes, or structurally for the types it lacks); returns how."""
    checked: set[str] = set()
    with little_boxes_backend([n.actor_url for n in ns]):
        for n in ns:
            for activity in await _emitted(n):
                assert vocabulary_problems(activity) == [], activity
                checked.add(independent_parse(activity))
    return checked


async def _trusts(n: RunningNode, *actors: str) -> None:
    """``n``'s coop follows ``actors`` (accepted): their pledges are accepted by rule."""
    coop = await n.ctx.coop_actor()
    for actor in actors:
        await n.ctx.store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=actor,
            direction="outbound",
            state="accepted",
            activity_id=f"{n.base_url}/activities/follow-{abs(hash(actor))}",
        )
