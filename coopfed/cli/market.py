"""The marketplace commands: proposals, the market, matches, exchanges, rules, tokens.

Each command calls the same functions as the C2S API (``outbox.market``), so a
proposal published here is validated, stored and federated exactly as one
posted to the outbox.  Invalid input prints the field to fix and exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from coopfed.cli.base import Action, command, print_json
from federation.context import NodeContext
from federation.exchange import STATES
from federation.vocab import ACTIONS, UNITS
from outbox import market
from outbox.c2s import issue_token
from outbox.errors import InvalidInput
from outbox.marketview import CoopNames, exchanges_view, market_view, matches_view
from outbox.proposals import number

Adder = Callable[..., argparse.ArgumentParser]
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ON_OFF = {"on": True, "off": False}


def deadline_arg(value: str | None) -> str | None:
    """An ISO time; a bare date means the end of that day (UTC)."""
    if value and DATE_ONLY.match(value):
        return f"{value}T23:59:59Z"
    return value


# -- proposals ---------------------------------------------------------------------


def _raw(args: argparse.Namespace, kind: str | None) -> dict[str, Any]:
    """The fields given on the command line, as ``validate_spec`` names them."""
    raw: dict[str, Any] = {"kind": kind} if kind else {}
    names = (
        "title",
        "details",
        "quantity",
        "unit",
        "unit_label",
        "price",
        "currency",
        "resource",
        "action",
    )
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            raw[name] = value
    if getattr(args, "target", None) is not None:
        raw["quantity"] = args.target
    if getattr(args, "deadline", None) is not None:
        raw["deadline"] = deadline_arg(args.deadline)
    if getattr(args, "tag", None):
        raw["tags"] = [t.lstrip("#") for t in args.tag]
    return raw


async def publish(node: NodeContext, args: argparse.Namespace) -> int:
    create = await market.publish_proposal(node, await node.coop_actor(), _raw(args, args.kind))
    print(create["object"]["id"])
    return 0


async def update(node: NodeContext, args: argparse.Namespace) -> int:
    changes = _raw(args, None)
    await market.update_proposal(node, await node.coop_actor(), args.uri, changes)
    print(f"updated {args.uri}")
    return 0


async def close(node: NodeContext, args: argparse.Namespace) -> int:
    await market.close_proposal(node, await node.coop_actor(), args.uri)
    print(f"closed {args.uri}")
    return 0


# -- the market ----------------------------------------------------------------------


def _line(p: dict[str, Any]) -> str:
    """One proposal in three lines: what, who, where."""
    words = p["display"]
    terms = [words["summary"]] if words["summary"] else []
    if words["received"]:
        terms.append(words["received"])
    if p["deadline"]:
        terms.append(f"until {words['deadline']}")
    tags = "".join(f" #{t}" for t in p["tags"])
    return (
        f"{p['kind'].upper():<10} {p['status']:<6} {p['title']} [{'; '.join(terms)}]{tags}\n"
        f"           by {p['coop_name']}\n           {p['uri']}"
    )


async def market_list(node: NodeContext, args: argparse.Namespace) -> int:
    items = await market_view(
        node, kind=args.kind, tag=args.tag, text=args.text, coop=args.coop, status=args.status
    )
    if args.json:
        print_json(items)
    elif not items:
        print("nothing in the market matches")
    else:
        print("\n".join(_line(p) for p in items))
    return 0


async def matches(node: NodeContext, args: argparse.Namespace) -> int:
    items = await matches_view(node)
    if args.json:
        print_json(items)
        return 0
    shown = [m for m in items if m["respond"]]
    if not shown:
        print("no open matches")
    for m in shown:
        ours, theirs = m["ours"], m["theirs"]
        print(
            f"{theirs['kind']} {theirs['title']!r} by {theirs['coop_name']}"
            f" [{theirs['display']['summary']}]\n"
            f"  fits our {ours['kind']} {ours['title']!r}: {m['reason']}\n"
            f"  {m['respond']}"
        )
    return 0


# -- exchanges -------------------------------------------------------------------------


async def respond(node: NodeContext, args: argparse.Namespace) -> int:
    quantity = number("quantity", args.quantity)
    if quantity is None:
        raise InvalidInput("quantity", "is required")
    exchange = await market.respond(
        node,
        await node.coop_actor(),
        args.uri,
        quantity=quantity,
        reciprocal=number("price", args.price),
        message=args.message or "",
    )
    kind = "pledge" if exchange.pledge else "offer"
    to = await CoopNames(node).of(exchange.proposer)
    print(f"exchange {exchange.id}: {kind} sent to {to} ({exchange.offer_id})")
    return 0


async def exchanges(node: NodeContext, args: argparse.Namespace) -> int:
    items = await exchanges_view(node, args.state)
    if args.json:
        print_json(items)
    elif not items:
        print("no exchanges")
    for e in items if not args.json else []:
        print(
            f"{e['id']}\t{e['role']}\t{e['state']}\t{e['counterparty_name']}\t{e['amount']}\t"
            f"{e['title'] or e['proposal']}\n\t{e['proposal']}"
        )
    return 0


def _step(name: str) -> Action:
    async def step(node: NodeContext, args: argparse.Namespace) -> int:
        coop = await node.coop_actor()
        if name in ("reject", "cancel"):
            moved = await getattr(market, name)(node, coop, args.id, args.reason or "")
        else:
            moved = await getattr(market, name)(node, coop, args.id)
        print(f"exchange {moved.id} {moved.state}")
        return 0

    return step


async def rules(node: NodeContext, args: argparse.Namespace) -> int:
    for name in market.RULE_DEFAULTS:
        value = getattr(args, name)
        if value is not None:
            await node.store.set_rule(name, ON_OFF[value])
    for name, value in (await market.rules(node)).items():
        print(f"{name.replace('_', '-')}: {'on' if value else 'off'}")
    return 0


# -- API tokens ----------------------------------------------------------------------


async def token(node: NodeContext, args: argparse.Namespace) -> int:
    if args.action == "create":
        if not args.value:
            print("coopfed: token create needs a NAME", file=sys.stderr)
            return 1
        coop = await node.coop_actor()
        token_id, secret = await issue_token(node, coop, args.value)
        print(secret)
        print(
            f"token {token_id} ({args.value}) for {node.urls.outbox(coop.username)}; "
            "shown only now: send it as 'Authorization: Bearer <token>'",
            file=sys.stderr,
        )
        return 0
    if args.action == "revoke":
        if not ((args.value or "").isascii() and (args.value or "").isdigit()):
            print("coopfed: token revoke needs an ID (see coopfed token list)", file=sys.stderr)
            return 1
        if not await node.store.revoke_token(int(args.value)):
            print(f"coopfed: no active token {args.value}", file=sys.stderr)
            return 1
        print(f"revoked token {args.value}")
        return 0
    rows = await node.store.list_tokens()
    if not rows:
        print("no tokens")

    def when(value: Any) -> str:
        return value.isoformat(timespec="seconds") if value else "-"

    for row in rows:
        state = f"revoked {when(row['revoked_at'])}" if row["revoked_at"] else "active"
        print(
            f"{row['id']}\t{row['name']}\tcreated {when(row['created_at'])}\t"
            f"last used {when(row['last_used_at'])}\t{state}"
        )
    return 0


def _proposal_flags(p: argparse.ArgumentParser, *, solidarity: bool = False) -> None:
    p.add_argument("--details", metavar="TEXT", help="a longer description (plain text)")
    if solidarity:
        p.add_argument("--target", metavar="N", help="the goal: an amount, hours, people…")
    else:
        p.add_argument("--quantity", metavar="N", help="how much (in --unit)")
    p.add_argument(
        "--unit",
        metavar="UNIT",
        help=f"unit of the quantity (default one): {', '.join(sorted(UNITS))}",
    )
    p.add_argument(
        "--unit-label",
        metavar="WORD",
        help="what one counted item is called, e.g. loaf (prints 20 loaves; unit stays one)",
    )
    if not solidarity:
        p.add_argument("--price", metavar="N", help="price (per unit when a --unit is given)")
    p.add_argument("--currency", metavar="CODE", help="three-letter currency code, e.g. EUR")
    p.add_argument(
        "--tag", action="append", metavar="WORD", help="a category tag (repeatable), e.g. flour"
    )
    p.add_argument(
        "--deadline",
        metavar="ISO",
        help="a time with its zone, e.g. 2025-07-15T18:00:00Z, or a date (its end, UTC)",
    )
    p.add_argument("--resource", metavar="WORD_OR_URL", help="what kind of thing, e.g. flour")
    p.add_argument("--action", metavar="ACTION", help=f"ValueFlows: {', '.join(sorted(ACTIONS))}")


def add_commands(add: Adder) -> None:
    for kind, text in (
        ("offer", "publish an offer: goods or services the coop provides"),
        ("need", "publish a need: what the coop is looking for"),
        ("solidarity", "publish a solidarity request: a fund, volunteers or goods by a deadline"),
    ):
        p = add(kind, command(publish), f"{text}; prints its URL")
        p.add_argument("title", metavar="TITLE")
        _proposal_flags(p, solidarity=kind == "solidarity")
        p.set_defaults(kind=kind)
    p = add("update", command(update), "change an open proposal (only the fields given)")
    p.add_argument("uri", metavar="URL")
    p.add_argument("--title", help="a new title")
    _proposal_flags(p)
    p = add("close", command(close), "close a proposal: it stays visible, marked CLOSED")
    p.add_argument("uri", metavar="URL")
    p = add("market", command(market_list), "search offers, needs and solidarity requests")
    p.add_argument("--kind", choices=("offer", "need", "solidarity"), help="only this kind")
    p.add_argument("--tag", metavar="WORD", help="only proposals with this tag")
    p.add_argument("--text", metavar="WORDS", help="words in the title or details")
    p.add_argument("--coop", metavar="HANDLE_OR_URL", help="only this coop's proposals")
    p.add_argument(
        "--status", choices=("open", "closed"), help="past-deadline proposals count as closed"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("matches", command(matches), "peers' proposals that fit ours, with the reply command")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("respond", command(respond), "answer a peer's offer, need or solidarity request")
    p.add_argument("uri", metavar="PROPOSAL_URL")
    p.add_argument("--quantity", required=True, metavar="N", help="how much (a pledge's amount)")
    p.add_argument("--price", metavar="N", help="the total the coop offers or asks in return")
    p.add_argument("--message", metavar="TEXT", help="a note to the other coop")
    p = add("exchanges", command(exchanges), "list exchanges: id, role, state, counterparty")
    p.add_argument("--state", choices=STATES, help="only exchanges in this state")
    p.add_argument("--json", action="store_true", help="print JSON (with each step)")
    for name, text in (
        ("accept", "accept an offer made on one of our proposals"),
        ("withdraw", "take back our offer before it is accepted"),
        ("cancel", "call off an accepted exchange"),
        ("complete", "confirm an accepted exchange took place (sends the receipt)"),
    ):
        p = add(name, command(_step(name)), text)
        p.add_argument("id", type=int, metavar="ID", help="the exchange (see coopfed exchanges)")
        if name == "cancel":
            p.add_argument("--reason", metavar="TEXT", help="why, for the other coop")
    p = add("rules", command(rules), "show or set the coop's automatic answers")
    for flag, text in (
        (
            "--auto-accept-pledges",
            "accept pledges to our solidarity requests from coops we follow (default on)",
        ),
        (
            "--auto-accept-pledges-from-anyone",
            "accept pledges by rule from actors we do not follow too (default off)",
        ),
        ("--cap-pledges", "count one pledge at most up to what the target misses (default on)"),
        ("--auto-accept-offers", "accept every response to our offers and needs (default off)"),
    ):
        p.add_argument(flag, choices=("on", "off"), help=text)
    p = add("token", command(token), "C2S API tokens: create NAME | list | revoke ID")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("value", nargs="?", metavar="NAME_OR_ID")
