"""The marketplace commands, run as the admin runs them: ``coopfed`` processes
attached to in-process nodes (their database and saved identity).

Subprocesses cost about a second each, so independent commands run together.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import orjson
import pytest

from coopfed.cli.main import build_parser
from coopfed.cli.market import close, market_list
from coopfed.state_file import save_identity
from federation.store import Exchange
from outbox import market
from outbox.publish import follow
from tests.support.cli import coopfed, ok
from tests.support.nodes import NodeFactory, RunningNode, eventually


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def test_every_command_has_help() -> None:
    # Given the parser of `coopfed`
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # Then every marketplace command is there with a description and documented options
    market_commands = {
        "offer",
        "need",
        "solidarity",
        "update",
        "close",
        "delete",
        "market",
        "matches",
        "respond",
        "exchanges",
        "accept",
        "reject",
        "withdraw",
        "cancel",
        "complete",
        "rules",
        "token",
    }
    assert market_commands <= set(commands.choices)
    for name, sub in commands.choices.items():
        assert sub.description, name
        for action in sub._actions if name in market_commands else []:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings}"


async def test_publish_update_close_delete_and_tokens(
    node: RunningNode, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the node's identity saved where the CLI looks for it
    save_identity(node.settings)
    # When the admin creates a token and publishes (and mistypes a need)
    created, offer, bad_need, fund = await asyncio.gather(
        coopfed(node, "token", "create", "script"),
        coopfed(
            node,
            "offer",
            "Rye bread",
            "--quantity",
            "20",
            "--unit",
            "kilogram",
            "--price",
            "3.5",
            "--currency",
            "EUR",
            "--tag",
            "bakery",
            "--tag",
            "#bread",
            "--deadline",
            in_days(10),
        ),
        coopfed(node, "need", "Flour", "--quantity", "-5"),
        coopfed(
            node,
            "solidarity",
            "Flood repair fund",
            "--target",
            "5000",
            "--currency",
            "EUR",
            "--deadline",
            in_days(20),
        ),
    )
    # Then the token is printed once, alone on its line
    token = ok(created).strip()
    assert len(token) >= 40 and "\n" not in token
    # And each proposal's URL is printed
    offer_uri, fund_uri = ok(offer).strip(), ok(fund).strip()
    assert offer_uri.startswith(f"{node.base_url}/proposals/")
    assert fund_uri.startswith(f"{node.base_url}/proposals/")
    # And the invalid need names the field, without a traceback
    code, out, err = bad_need
    assert (code, out) == (1, "")
    assert err == "coopfed: invalid quantity: must not be negative\n"
    stored = await node.ctx.store.get_proposal(offer_uri)
    assert stored is not None
    assert (stored.kind, stored.quantity, stored.unit, stored.price, stored.tags) == (
        "offer",
        Decimal(20),
        "kilogram",
        Decimal("3.5"),
        ["bakery", "bread"],
    )
    assert stored.deadline is not None and stored.deadline.isoformat().endswith("23:59:59+00:00")
    # And the token opens the API
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{node.base_url}/api/market", headers=headers) as resp:
        assert resp.status == 200
        # (published by two processes at once: in either order)
        assert sorted(p["uri"] for p in await resp.json()) == sorted([fund_uri, offer_uri])

    # When the admin updates the offer and revokes the token
    tokens = await node.ctx.store.list_tokens()
    update, revoke = await asyncio.gather(
        coopfed(node, "update", offer_uri, "--title", "Rye loaves", "--quantity", "30"),
        coopfed(node, "token", "revoke", str(tokens[0]["id"])),
    )
    assert ok(update) == f"updated {offer_uri}\n"
    assert ok(revoke) == f"revoked token {tokens[0]['id']}\n"
    async with http.get(f"{node.base_url}/api/market", headers=headers) as resp:
        assert resp.status == 401
    # And closes the fund (the command's code, in-process: subprocesses are slow)
    assert await close(node.ctx, argparse.Namespace(uri=fund_uri)) == 0
    assert capsys.readouterr().out == f"closed {fund_uri}\n"
    closed = await node.ctx.store.get_proposal(fund_uri)
    assert closed is not None and closed.status == "closed"

    # When the admin searches offers and deletes the fund
    listed, delete = await asyncio.gather(
        coopfed(node, "market", "--kind", "offer", "--json"),
        coopfed(node, "delete", fund_uri),
    )
    # Then the market shows the updated offer
    items = orjson.loads(ok(listed))
    assert [(p["uri"], p["title"], p["quantity"], p["status"]) for p in items] == [
        (offer_uri, "Rye loaves", "30", "open")
    ]
    # And the fund is deleted
    assert ok(delete) == f"deleted {fund_uri}\n"
    deleted = await node.ctx.store.get_proposal(fund_uri)
    assert deleted is not None and deleted.status == "deleted"
    # And the market's text view (the same code, in-process) shows the offer in three lines
    filters = {"kind": None, "tag": "bread", "text": None, "coop": None, "status": "open"}
    assert await market_list(node.ctx, argparse.Namespace(json=False, **filters)) == 0
    coop = await node.ctx.coop_actor()
    assert capsys.readouterr().out.splitlines() == [
        f"OFFER      open   Rye loaves [30 kg for €3.50 per kg; until {in_days(10)} 23:59 UTC]"
        " #bakery #bread",
        f"           by {coop.name} (@{node.handle})",
        f"           {offer_uri}",
    ]


async def test_matches_respond_and_accept(nodes: NodeFactory) -> None:
    # Given coop A (offering flour) follows coop B, which needs flour
    a = await nodes("a", name="Mill Coop")
    b = await nodes("b", name="Rye Bakery")
    save_identity(a.settings)
    save_identity(b.settings)
    a_coop, b_coop = await a.ctx.coop_actor(), await b.ctx.coop_actor()
    await follow(a.ctx, a_coop, b.handle)

    async def following() -> bool:
        return bool(await a.ctx.store.list_follows(a_coop.id, "outbound"))

    await eventually(following, message="B accepts A")
    await market.publish_proposal(
        a.ctx,
        a_coop,
        {
            "kind": "offer",
            "title": "Flour sacks",
            "quantity": "100",
            "unit": "kilogram",
            "tags": ["flour"],
        },
    )
    create = await market.publish_proposal(
        b.ctx,
        b_coop,
        {
            "kind": "need",
            "title": "Organic flour",
            "quantity": "200",
            "unit": "kilogram",
            "tags": ["flour"],
        },
    )
    need_uri = create["object"]["id"]
    await eventually(lambda: a.ctx.store.list_matches(), message="A matches B's need")
    # When A's admin lists the matches (and turns pledges to manual meanwhile)
    matches, rules = await asyncio.gather(
        coopfed(a, "matches"), coopfed(a, "rules", "--auto-accept-pledges", "off")
    )
    assert ok(rules) == (
        "auto-accept-pledges: off\nauto-accept-pledges-from-anyone: off\n"
        "cap-pledges: on\nauto-accept-offers: off\n"
    )
    assert await market.rules(a.ctx) == {
        "auto_accept_pledges": False,
        "auto_accept_pledges_from_anyone": False,
        "cap_pledges": True,
        "auto_accept_offers": False,
    }
    out = ok(matches)
    # Then each comes with the command that answers it
    lines = out.splitlines()
    assert lines[0] == (
        f"need 'Organic flour' by Rye Bakery (@{b.handle}) [200 kg, price negotiable]"
    )
    assert lines[1] == "  fits our offer 'Flour sacks': shares the tag #flour"
    command = lines[2].strip()
    assert command == f"coopfed respond {need_uri} --quantity 100"
    # When the admin runs it, with a message
    out = ok(await coopfed(a, *shlex.split(command)[1:], "--message", "Milled this week"))
    assert out.startswith(f"exchange 1: offer sent to Rye Bakery (@{b.handle}) (")

    async def offered_at_b() -> list[Exchange]:
        return await b.ctx.store.list_exchanges(state="offered")

    (at_b,) = await eventually(offered_at_b, message="B records A's offer")
    # Then B's admin sees it, and accepts it by its ID
    listed = ok(await coopfed(b, "exchanges"))
    assert listed == (
        f"{at_b.id}\tproposer\toffered\tMill Coop (@{a.handle})\t100 kg\tOrganic flour\n"
        f"\t{need_uri}\n"
    )
    assert ok(await coopfed(b, "accept", str(at_b.id))) == f"exchange {at_b.id} accepted\n"

    async def accepted_at_a() -> bool:
        rows = await a.ctx.store.list_exchanges(state="accepted")
        return len(rows) == 1 and rows[0].message == "Milled this week"

    await eventually(accepted_at_a, message="A sees the acceptance")
