"""The admin's dashboard: followers, publishing, our proposals, market, matches,
exchanges and domain blocks, on one server-rendered page.

Pure functions of what ``admin.routes`` gathers (the views the CLI and the
``/api/*`` JSON use); the buttons of an exchange are the events the state
machine allows (``federation.exchange.allowed_events``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from admin.pages import PAGES, Forms, render
from federation.context import NodeContext
from federation.display import share_of
from federation.exchange import allowed_events
from federation.store import LocalActor
from outbox.c2s import amount_text
from outbox.errors import InvalidInput
from outbox.marketview import exchanges_view, market_view, matches_view

FILTERS = ("kind", "status", "tag", "text", "coop")
EVENT_LABELS = {
    "accept": "Accept",
    "reject": "Reject",
    "withdraw": "Withdraw",
    "cancel": "Cancel",
    "complete": "Mark completed",
}


def card_facts(p: Mapping[str, Any]) -> tuple[list[str], int]:
    """The lines of a market card (the words of ``federation.display``), and how far
    a solidarity request is (-1: not one)."""
    words = p["display"]
    facts = [f"Status: {p['status']}"]
    share = -1
    if p["kind"] == "solidarity":
        if words["progress"]:
            pledged, target = Decimal(p["pledged"] or 0), Decimal(p["quantity"])
            share = share_of(pledged, target)
            facts.append(f"{words['progress']}, {words['received']}")
        elif words["amount"]:
            facts.append(f"Target: {words['amount']}")
    else:
        if words["amount"]:
            facts.append(f"Quantity: {words['amount']}")
        facts.append(f"Price: {words['price']}")
    if words["deadline"]:
        facts.append(f"Deadline: {words['deadline']}")
    return facts, share


def exchange_facts(e: Mapping[str, Any]) -> list[str]:
    facts = [
        (e["amount"] if e["pledge"] else f"Terms: {e['amount']}") if e["amount"] else "",
        f"Message: {e['message']}" if e["message"] else "",
    ]
    return [f for f in facts if f]


def respond_id(uri: str) -> str:
    """The id of the respond form of a proposal (stable across renderings)."""
    return "respond-" + hashlib.sha256(uri.encode()).hexdigest()[:12]


def suggestion(theirs: Mapping[str, Any], ours: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """A sensible (amount, price) to answer ``theirs``, as ``coopfed matches`` suggests."""
    mine = Decimal(ours["quantity"]) if ours and ours.get("quantity") else None
    quantity = Decimal(theirs["quantity"]) if theirs["quantity"] else mine or Decimal(1)
    if mine and theirs["quantity"]:
        quantity = min(mine, quantity)
    price = None
    if theirs["kind"] != "solidarity" and theirs["price"]:
        price = Decimal(theirs["price"])
        if (theirs["unit"] or "one") != "one":
            price *= quantity
    return amount_text(quantity) or "1", amount_text(price)


@dataclass(frozen=True, slots=True)
class Dashboard:
    name: str
    handle: str
    profile: str
    pending: list[tuple[str, str]]  # (actor URL, handle) of follow requests
    ours: list[dict[str, Any]]
    market: list[dict[str, Any]]
    filters: Mapping[str, str]
    matches: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    names: Mapping[str, str]  # actor URL -> handle
    blocks: list[str]


def dashboard(d: Dashboard, forms: Forms, *, flash: str = "", error: str = "") -> str:
    return render("dashboard", f"Admin · {d.name}", d=d, forms=forms, flash=flash, error=error)


PAGES.globals.update(
    card_facts=card_facts,
    exchange_facts=exchange_facts,
    allowed_events=allowed_events,
    event_labels=EVENT_LABELS,
    respond_id=respond_id,
    suggestion=suggestion,
)


# -- the data ----------------------------------------------------------------------


async def _handle_of(node: NodeContext, uri: str, cache: dict[str, str]) -> str:
    if uri not in cache:
        if node.urls.is_local(uri):
            cache[uri] = f"@{node.urls.local_username(uri) or uri}@{node.urls.domain}"
        else:
            remote = await node.store.get_remote_actor(uri)
            cache[uri] = f"@{remote.handle}" if remote and remote.username else uri
    return cache[uri]


async def gather(
    node: NodeContext, actor: LocalActor, filters: Mapping[str, str], forms: Forms
) -> Dashboard:
    actor_url = node.urls.actor(actor.username)
    names: dict[str, str] = {}
    pending = [
        (f.remote_actor, await _handle_of(node, f.remote_actor, names))
        for f in await node.store.list_follows(actor.id, "inbound", state="pending", limit=200)
    ]
    try:
        found = await market_view(
            node,
            kind=filters.get("kind") or None,
            tag=filters.get("tag") or None,
            text=filters.get("text") or None,
            coop=filters.get("coop") or None,
            status=filters.get("status") or None,
        )
    except InvalidInput as exc:
        forms.errors["filter"] = {exc.field: exc.message}
        found = []
    matches = await matches_view(node)
    exchanges = await exchanges_view(node)
    return Dashboard(
        name=actor.name or actor.username,
        handle=f"@{actor.username}@{node.urls.domain}",
        profile=node.urls.profile_page(actor.username),
        pending=pending,
        ours=await market_view(node, coop=actor_url, limit=200),
        market=found,
        filters={k: filters.get(k, "") for k in FILTERS},
        matches=matches,
        exchanges=exchanges,
        names=names,
        blocks=await node.store.list_domain_blocks(),
    )
