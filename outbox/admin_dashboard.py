"""The admin's dashboard: followers, publishing, our proposals, market, matches,
exchanges and domain blocks, on one server-rendered page.

Pure functions of what ``outbox.admin`` gathers (the views the CLI and the
``/api/*`` JSON use); the buttons of an exchange are the events the state
machine allows (``federation.exchange.allowed_events``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from federation.context import NodeContext
from federation.exchange import allowed_events
from federation.safehtml import safe_href
from federation.store import LocalActor
from federation.vocab import KINDS
from outbox.admin_pages import (
    KIND_LABELS,
    Forms,
    amount,
    button,
    edit_link,
    esc,
    hidden,
    input_field,
    page,
    post_form,
    proposal_fields,
)
from outbox.c2s import amount_text, exchanges_view, market_view, matches_view
from outbox.proposals import InvalidProposal

FILTERS = ("kind", "status", "tag", "text", "coop")
EVENT_LABELS = {
    "accept": "Accept",
    "reject": "Reject",
    "withdraw": "Withdraw",
    "cancel": "Cancel",
    "complete": "Mark completed",
}


def proposal_card(p: Mapping[str, Any], who: str = "") -> str:
    """One proposal of the market (``outbox.c2s.proposal_json``)."""
    money = p["currency"] if p["kind"] == "solidarity" and (p["unit"] or "one") == "one" else None
    facts = [f"Status: {p['status']}"]
    if p["kind"] == "solidarity" and p["quantity"]:
        pledged, target = Decimal(p["pledged"] or 0), Decimal(p["quantity"])
        share = min(100, int(pledged * 100 / target)) if target else 0
        facts.append(
            f"{amount(p['pledged'], p['unit'], money)} pledged of "
            f"{amount(p['quantity'], p['unit'], money)} ({share}%), "
            f"{amount(p['received'], p['unit'], money)} received"
        )
    else:
        share = -1
        if p["quantity"]:
            facts.append(f"Quantity: {amount(p['quantity'], p['unit'])}")
        price = amount(p["price"], "one", p["currency"]) if p["price"] else "negotiable"
        facts.append(f"Price: {price}")
    if p["deadline"]:
        facts.append(f"Deadline: {p['deadline'][:16].replace('T', ' ')} UTC")
    bar = (
        f'<progress value="{share}" max="100" aria-label="{share}% pledged">{share}%</progress>'
        if share >= 0
        else ""
    )
    tags = " ".join(f"#{t}" for t in p["tags"])
    return (
        f'<h3><span class="kind">{esc(KIND_LABELS[p["kind"]])}</span> '
        f'<a href="{esc(safe_href(p["uri"]) or "")}">{esc(p["title"])}</a></h3>'
        + (f'<p class="by">by {esc(who)}</p>' if who else "")
        + bar
        + "<ul>"
        + "".join(f"<li>{esc(f)}</li>" for f in facts)
        + "</ul>"
        + (f'<p class="tags">{esc(tags)}</p>' if tags else "")
    )


def respond_form(
    forms: Forms, form: str, p: Mapping[str, Any], quantity: str, price: str | None
) -> str:
    pledge = p["kind"] == "solidarity"
    inner = (
        hidden("proposal", p["uri"])
        + forms.top_error(form, ("quantity", "price", "message"))
        + input_field(
            forms, form, "quantity", "Amount", quantity, attrs=' inputmode="decimal" required'
        )
        + (
            ""
            if pledge
            else input_field(forms, form, "price", "Price you pay or ask (total)", price or "")
        )
        + input_field(forms, form, "message", "Message", "", kind="textarea")
        + button("Pledge" if pledge else "Send response")
    )
    open_ = " open" if form in forms.errors else ""
    summary = "Pledge" if pledge else "Respond"
    inner_form = post_form(forms, "/admin/respond", form, inner)
    return f"<details{open_}><summary>{summary}</summary>{inner_form}</details>"


def exchange_item(
    forms: Forms, e: Mapping[str, Any], title: str, who: str, currency: str | None = None
) -> str:
    form = f"exchange-{e['id']}"
    events = allowed_events(e["state"], e["role"])
    unit = e["unit"] or "one"
    facts = [
        f"{'Pledge' if e['pledge'] else 'Quantity'}: {amount(e['quantity'], unit)}",
        f"In return: {amount(e['reciprocal'], 'one', currency)}" if e["reciprocal"] else "",
        f"Message: {e['message']}" if e["message"] else "",
    ]
    controls = ""
    if events:
        reason = (
            input_field(forms, form, "reason", "Reason (optional)")
            if {"reject", "cancel"} & set(events)
            else ""
        )
        buttons = "".join(
            button(EVENT_LABELS[ev], name="event", value=ev, secondary=ev in ("reject", "cancel"))
            for ev in events
        )
        controls = post_form(
            forms,
            f"/admin/exchanges/{e['id']}",
            form,
            forms.top_error(form, ("reason",)) + reason + buttons,
        )
    we = "we published the proposal" if e["role"] == "proposer" else "we responded"
    return (
        f'<article class="post exchange" id="x{esc(e["id"])}"><h3>Exchange {esc(e["id"])}: '
        f'<a href="{esc(safe_href(e["proposal"]) or "")}">{esc(title)}</a></h3>'
        f'<p>State: <strong class="state">{esc(e["state"])}</strong> · {esc(we)} · '
        f"with {esc(who)}</p><ul>"
        + "".join(f"<li>{esc(f)}</li>" for f in facts if f)
        + f"</ul>{controls}</article>"
    )


def filter_form(forms: Forms, filters: Mapping[str, str]) -> str:
    def select(name: str, label: str, options: tuple[str, ...]) -> str:
        current = filters.get(name, "")
        opts = "".join(
            f'<option value="{esc(o)}"{" selected" if o == current else ""}>{esc(o or "any")}'
            "</option>"
            for o in ("", *options)
        )
        return (
            f'<label for="filter-{name}">{label}</label>'
            f'<select id="filter-{name}" name="{name}">{opts}</select>'
        )

    def text(name: str, label: str) -> str:
        return (
            f'<label for="filter-{name}">{label}</label><input id="filter-{name}" name="{name}" '
            f'value="{esc(filters.get(name, ""))}">'
        )

    return (
        '<form method="get" action="/admin#market" id="filter">'
        + forms.top_error("filter", ())
        + select("kind", "Kind", KINDS)
        + select("status", "Status", ("open", "closed"))
        + text("tag", "Tag")
        + text("text", "Words")
        + text("coop", "Coop (user@host or URL)")
        + button("Filter")
        + "</form>"
    )


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
    titles: Mapping[str, str]  # proposal URI -> title
    currencies: Mapping[str, str | None]  # proposal URI -> its currency
    names: Mapping[str, str]  # actor URL -> handle
    blocks: list[str]


def small_form(forms: Forms, action: str, form: str, fields: Mapping[str, str], label: str) -> str:
    inner = "".join(hidden(k, v) for k, v in fields.items()) + button(label, secondary=True)
    return post_form(forms, action, form, inner, "inline")


def dashboard(d: Dashboard, forms: Forms, *, flash: str = "", error: str = "") -> str:
    notice = f'<p class="flash" role="status">{esc(flash)}</p>' if flash else ""
    alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    pending = "".join(
        f"<li>{esc(handle)} "
        + small_form(forms, "/admin/followers/approve", f"approve-{i}", {"actor": url}, "Approve")
        + small_form(forms, "/admin/followers/reject", f"refuse-{i}", {"actor": url}, "Reject")
        + "</li>"
        for i, (url, handle) in enumerate(d.pending)
    )
    publish = "".join(
        f"<details{' open' if f'publish-{k}' in forms.errors else ''}>"
        f"<summary>Publish {'a' if k != 'offer' else 'an'} {esc(KIND_LABELS[k].lower())}</summary>"
        + post_form(
            forms,
            "/admin/proposals",
            f"publish-{k}",
            hidden("kind", k) + proposal_fields(forms, f"publish-{k}", k, {}) + button("Publish"),
        )
        + "</details>"
        for k in KINDS
    )
    ours = "".join(
        f'<article class="post card" id="ours-{i}">{proposal_card(p)}'
        + (
            f'<a href="{esc(edit_link(p["uri"]))}">Edit</a> '
            + small_form(forms, "/admin/proposals/close", f"close-{i}", {"uri": p["uri"]}, "Close")
            if p["status"] == "open"
            else ""
        )
        + small_form(forms, "/admin/proposals/delete", f"delete-{i}", {"uri": p["uri"]}, "Delete")
        + "</article>"
        for i, p in enumerate(d.ours)
    )
    market = "".join(
        f'<article class="post card">{proposal_card(p, d.names.get(p["coop"], p["coop"]))}'
        + (
            respond_form(forms, respond_id(p["uri"]), p, *suggestion(p, None))
            if not p["local"] and p["status"] == "open"
            else ""
        )
        + "</article>"
        for p in d.market
    )
    matches = "".join(
        f'<article class="post card"><p>Matches our <a href="{esc(m["ours"]["uri"])}">'
        f"{esc(m['ours'].get('title', m['ours']['uri']))}</a>: {esc(m['reason'])}</p>"
        + proposal_card(m["theirs"], d.names.get(m["theirs"]["coop"], m["theirs"]["coop"]))
        + (
            respond_form(
                forms, f"match-{m['id']}", m["theirs"], *suggestion(m["theirs"], m["ours"])
            )
            if m["respond"]
            else ""
        )
        + "</article>"
        for m in d.matches
    )
    exchanges = "".join(
        exchange_item(
            forms,
            e,
            d.titles.get(e["proposal"], e["proposal"]),
            d.names.get(e["counterparty"], e["counterparty"]),
            currency=d.currencies.get(e["proposal"]),
        )
        for e in d.exchanges
    )
    blocks = "".join(
        f"<li>{esc(domain)} "
        + small_form(forms, "/admin/blocks/remove", f"unblock-{i}", {"domain": domain}, "Unblock")
        + "</li>"
        for i, domain in enumerate(d.blocks)
    )
    block_form = post_form(
        forms,
        "/admin/blocks",
        "block",
        forms.top_error("block", ("domain", "reason"))
        + input_field(forms, "block", "domain", "Domain", attrs=" required")
        + input_field(forms, "block", "reason", "Note (optional)")
        + button("Block"),
    )
    logout = post_form(
        forms, "/admin/logout", "logout", button("Log out", secondary=True), "inline"
    )
    body = (
        f'<header><h1>{esc(d.name)}: admin</h1><p class="handle">{esc(d.handle)} · '
        f'<a href="{esc(d.profile)}">Public page</a> {logout}</p></header>'
        '<nav><a href="#followers">Followers</a> · <a href="#publish">Publish</a> · '
        '<a href="#ours">Our proposals</a> · <a href="#market">Market</a> · '
        '<a href="#matches">Matches</a> · <a href="#exchanges">Exchanges</a> · '
        '<a href="#blocks">Blocks</a></nav>'
        f"<main>{notice}{alert}"
        f'<section id="followers"><h2>Follow requests</h2>'
        f"{f'<ul>{pending}</ul>' if pending else '<p>No pending follow requests.</p>'}</section>"
        f'<section id="publish"><h2>Publish</h2>{publish}</section>'
        f'<section id="ours"><h2>Our proposals</h2>{ours or "<p>Nothing published yet.</p>"}'
        "</section>"
        f'<section id="market"><h2>Market</h2>{filter_form(forms, d.filters)}'
        f"{market or '<p>Nothing in the market matches.</p>'}</section>"
        f'<section id="matches"><h2>Matches</h2>{matches or "<p>No matches yet.</p>"}</section>'
        f'<section id="exchanges"><h2>Exchanges</h2>{exchanges or "<p>No exchanges yet.</p>"}'
        "</section>"
        f'<section id="blocks"><h2>Blocked domains</h2>'
        f"{f'<ul>{blocks}</ul>' if blocks else '<p>No domain is blocked.</p>'}{block_form}"
        "</section></main>"
    )
    return page(f"Admin · {d.name}", body)


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
    except InvalidProposal as exc:
        forms.errors["filter"] = (exc.field, exc.message)
        found = []
    matches = await matches_view(node)
    exchanges = await exchanges_view(node)
    titles: dict[str, str] = {}
    currencies: dict[str, str | None] = {}
    for e in exchanges:
        proposal = await node.store.get_proposal(e["proposal"])
        titles[e["proposal"]] = proposal.title if proposal else e["proposal"]
        currencies[e["proposal"]] = proposal.currency if proposal else None
    for uri in [p["coop"] for p in found] + [m["theirs"].get("coop", "") for m in matches]:
        await _handle_of(node, uri, names)
    for e in exchanges:
        await _handle_of(node, e["counterparty"], names)
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
        titles=titles,
        currencies=currencies,
        names=names,
        blocks=await node.store.list_domain_blocks(),
    )
