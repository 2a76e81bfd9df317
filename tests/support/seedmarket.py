"""A small market across two real nodes, as a coop sees it after its first weeks.

The bakery (``@bakery``, "Rye Bakery") sells bread by the loaf and needs rye
grain; the mill (``@mill``, "Mill Coop") offers rye grain and has pledged to the
bakery's oven fund.  Each follows the other, so each market shows the other's
proposals with its name, and the bakery's matches rank the mill's rye grain
first.  The browser tests and the screenshots in ``docs/screenshots`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from outbox import market
from outbox.publish import follow
from tests.support.nodes import NodeFactory, RunningNode, eventually

BAKERY = {"name": "Rye Bakery", "username": "bakery"}
MILL = {"name": "Mill Coop", "username": "mill"}


@dataclass(frozen=True)
class Seeded:
    bakery: RunningNode
    mill: RunningNode
    bread: str  # the bakery's offer of 20 loaves for €60
    rye_need: str  # the bakery's need of 500 kg of rye grain
    oven_fund: str  # the bakery's solidarity request, €1,000 pledged of €3,000
    rye_offer: str  # the mill's offer of rye grain
    deadline: datetime


async def follows(follower: RunningNode, followee: RunningNode) -> None:
    coop = await follower.ctx.coop_actor()
    await follow(follower.ctx, coop, followee.handle)

    async def accepted() -> bool:
        return bool(await follower.ctx.store.list_follows(coop.id, "outbound", state="accepted"))

    await eventually(accepted, message=f"{followee.name} accepts {follower.name}")


async def _seen(node: RunningNode, uri: str) -> None:
    await eventually(lambda: node.ctx.store.get_proposal(uri), message=f"{node.name} has {uri}")


async def seed_market(nodes: NodeFactory) -> Seeded:
    bakery = await nodes("bakery", **BAKERY)
    mill = await nodes("mill", **MILL)
    await follows(mill, bakery)
    await follows(bakery, mill)  # pledges from coops the bakery follows are accepted by rule
    coop, miller = await bakery.ctx.coop_actor(), await mill.ctx.coop_actor()
    deadline = (datetime.now(UTC) + timedelta(days=20)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    bread = await market.publish_proposal(bakery.ctx, coop, {
        "kind": "offer", "title": "Rye sourdough bread", "quantity": "20",
        "unit_label": "loaf", "price": "60", "currency": "EUR", "resource": "bread",
        "tags": ["bread", "rye"], "details": "Baked every morning from our own starter.",
    })  # fmt: skip
    rye_need = await market.publish_proposal(bakery.ctx, coop, {
        "kind": "need", "title": "Rye grain for milling", "quantity": "500",
        "unit": "kilogram", "resource": "rye grain", "tags": ["rye", "grain"],
    })  # fmt: skip
    fund = await market.publish_proposal(bakery.ctx, coop, {
        "kind": "solidarity", "title": "Oven repair after the flood", "quantity": "3000",
        "currency": "EUR", "deadline": deadline.isoformat(), "tags": ["flood"],
        "details": "The flood took our oven. Help us bake again.",
    })  # fmt: skip
    rye_offer = await market.publish_proposal(mill.ctx, miller, {
        "kind": "offer", "title": "Organic rye grain", "quantity": "2",
        "unit": "tonne", "price": "400", "currency": "EUR", "resource": "rye grain",
        "tags": ["rye", "grain"],
    })  # fmt: skip
    seeded = Seeded(
        bakery=bakery,
        mill=mill,
        bread=bread["object"]["id"],
        rye_need=rye_need["object"]["id"],
        oven_fund=fund["object"]["id"],
        rye_offer=rye_offer["object"]["id"],
        deadline=deadline,
    )
    for uri in (seeded.bread, seeded.rye_need, seeded.oven_fund):
        await _seen(mill, uri)
    await _seen(bakery, seeded.rye_offer)
    # The mill pledges to the oven fund (accepted by rule) and orders 20 loaves
    await market.respond(mill.ctx, miller, seeded.oven_fund, quantity=Decimal(1000))
    await market.respond(
        mill.ctx, miller, seeded.bread, quantity=Decimal(20), reciprocal=Decimal(60)
    )

    async def settled() -> bool:
        fund_row = await bakery.ctx.store.get_proposal(seeded.oven_fund)
        pledged_at_mill = await mill.ctx.store.get_proposal(seeded.oven_fund)
        exchanges = await bakery.ctx.store.list_exchanges()
        return (
            fund_row is not None
            and fund_row.pledged == Decimal(1000)
            and pledged_at_mill is not None
            and pledged_at_mill.pledged == Decimal(1000)
            and len(exchanges) == 2
        )

    await eventually(settled, message="the pledge and the order reach the bakery")
    return seeded
