"""The market in words, across real nodes and through the ``coopfed`` command: coops
by name and handle, amounts with their unit and currency ("20 loaves for €60"),
pledges with what was received, and matches best first with why they matched."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from outbox import market
from tests.support.cli import coopfed, ok
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.seedmarket import follows, seed_market


def label(node: RunningNode, name: str) -> str:
    return f"{name} (@{node.handle})"


async def test_market_and_exchanges_read_names_and_amounts(nodes: NodeFactory) -> None:
    # Given the bakery and the mill of the seeded market (an order of 20 loaves for
    # €60 and a pledge of €1,000 to the oven fund, from the mill to the bakery)
    seeded = await seed_market(nodes)
    bakery, mill = seeded.bakery, seeded.mill
    until = seeded.deadline.strftime("%Y-%m-%d %H:%M UTC")
    # When the bakery confirms the pledge arrived (the pledge was accepted by rule)
    by_offer = {e.proposal_uri: e for e in await bakery.ctx.store.list_exchanges()}
    pledge = by_offer[seeded.oven_fund]
    await market.complete(bakery.ctx, await bakery.ctx.coop_actor(), pledge.id)

    async def received_at_mill() -> bool:
        row = await mill.ctx.store.get_proposal(seeded.oven_fund)
        return row is not None and row.received == Decimal(1000)

    await eventually(received_at_mill, message="the mill sees the money received")
    # And each admin lists the market and the exchanges
    listed, exchanges = await asyncio.gather(coopfed(mill, "market"), coopfed(bakery, "exchanges"))
    lines = ok(listed).splitlines()
    # Then the mill's market names the bakery and reads amounts with units and currency
    by_title = {line.split("]")[0]: i for i, line in enumerate(lines) if line[:1] != " "}
    bread = next(i for t, i in by_title.items() if "Rye sourdough bread" in t)
    assert lines[bread : bread + 3] == [
        "OFFER      open   Rye sourdough bread [20 loaves for €60] #bread #rye",
        f"           by {label(bakery, 'Rye Bakery')}",
        f"           {seeded.bread}",
    ]
    fund = next(i for t, i in by_title.items() if "Oven repair" in t)
    assert lines[fund] == (
        "SOLIDARITY open   Oven repair after the flood [€1,000 pledged of €3,000 (33%); "
        f"€1,000 received; until {until}] #flood"
    )
    need = next(i for t, i in by_title.items() if "Rye grain for milling" in t)
    assert lines[need].startswith(
        "NEED       open   Rye grain for milling [500 kg, price negotiable]"
    )
    # And the bakery's exchanges name the mill and read "20 loaves for €60"
    rows = sorted(ok(exchanges).split("\n")[:-1:2])
    order = by_offer[seeded.bread]
    assert rows == sorted(
        [
            f"{order.id}\tproposer\toffered\t{label(mill, 'Mill Coop')}\t20 loaves for €60\t"
            "Rye sourdough bread",
            f"{pledge.id}\tproposer\tcompleted\t{label(mill, 'Mill Coop')}\t€1,000 pledged\t"
            "Oven repair after the flood",
        ]
    )
    assert not any("/users/" in line for line in rows)


async def test_publishing_a_unit_label_from_the_cli(nodes: NodeFactory) -> None:
    a, b = await nodes("a", name="Orchard Coop"), await nodes("b")
    await follows(b, a)
    # When the orchard offers 10 crates of apples, and mistypes a label
    offer, bad = await asyncio.gather(
        coopfed(a, "offer", "Apples", "--quantity", "10", "--unit-label", "crate",
                "--price", "50"),
        coopfed(a, "offer", "Pears", "--quantity", "3", "--unit-label", "3 crates"),
    )  # fmt: skip
    uri = ok(offer).strip()
    # Then the bad label is refused, naming the field
    assert bad.code == 1 and bad.err == (
        "coopfed: invalid unit_label: must be a word or two naming one item, e.g. loaf\n"
    )

    # And the peer's market reads crates, while the wire said "one"
    async def seen() -> bool:
        return await b.ctx.store.get_proposal(uri) is not None

    await eventually(seen, message="B stores the offer")
    (item,) = (await coopfed(b, "market", "--json")).json()
    assert (item["unit"], item["unit_label"], item["display"]["summary"]) == (
        "one",
        "crate",
        "10 crates for €50",
    )
    assert item["coop_name"] == f"Orchard Coop (@{a.handle})"


async def test_matches_rank_the_same_resource_first_across_nodes(nodes: NodeFactory) -> None:
    # Given the seeded bakery (bread, #rye) and mill (rye grain, #rye), and a grocer
    # that follows both and needs rye grain
    seeded = await seed_market(nodes)
    grocer = await nodes("grocer", name="Corner Grocer", username="grocer")
    await follows(grocer, seeded.bakery)
    await follows(grocer, seeded.mill)
    for uri in (seeded.bread, seeded.rye_offer):
        await eventually(lambda u=uri: grocer.ctx.store.get_proposal(u), message="backfill")
    need = ok(
        await coopfed(grocer, "need", "Rye grain for the shelf", "--quantity", "50",
                      "--unit", "kilogram", "--resource", "rye grain", "--tag", "rye")
    ).strip()  # fmt: skip
    # When the grocer lists its matches
    out = ok(await coopfed(grocer, "matches")).splitlines()
    # Then the mill's rye grain comes, with why; the bread (only #rye) does not
    assert out[0] == (
        f"offer 'Organic rye grain' by {label(seeded.mill, 'Mill Coop')} [2 t for €400 per t]"
    )
    assert out[1] == (
        "  fits our need 'Rye grain for the shelf': same resource: rye grain (and the tag #rye)"
    )
    assert "Rye sourdough bread" not in "\n".join(out)
    # When the mill closes its offer, nothing better is left: the bread shows, saying so
    await market.close_proposal(
        seeded.mill.ctx, await seeded.mill.ctx.coop_actor(), seeded.rye_offer
    )

    async def closed_at_grocer() -> bool:
        row = await grocer.ctx.store.get_proposal(seeded.rye_offer)
        return row is not None and row.status == "closed"

    await eventually(closed_at_grocer, message="the grocer sees the offer closed")
    out = ok(await coopfed(grocer, "matches")).splitlines()
    assert out[:2] == [
        f"offer 'Rye sourdough bread' by {label(seeded.bakery, 'Rye Bakery')} [20 loaves for €60]",
        "  fits our need 'Rye grain for the shelf': only shares the tag #rye: "
        "theirs is bread, ours rye grain",
    ]
    assert all(m.our_proposal == need for m in await grocer.ctx.store.list_matches())
