"""The public board: a coop's open offers, needs and solidarity requests.

Server-rendered HTML, no JavaScript: the profile with its board, one page per
proposal, the archive of closed ones, the network view of what followed coops
publish, and tag pages.  Every text is escaped here; proposal ``content`` is
never rendered from peers (only our own builders' HTML is trusted).
"""

from __future__ import annotations

import html
from datetime import datetime

from actors.pages import render_page
from federation.safehtml import safe_href
from federation.store import LocalActor, Proposal
from federation.urls import Urls
from federation.vocab import format_amount

KIND_TITLES = {"offer": "Offers", "need": "Needs", "solidarity": "Solidarity requests"}
KIND_LABELS = {"offer": "Offer", "need": "Need", "solidarity": "Solidarity"}


def is_closed(p: Proposal, now: datetime) -> bool:
    return p.status != "open" or (p.deadline is not None and p.deadline < now)


def _money(p: Proposal) -> str | None:
    return p.currency if p.kind == "solidarity" and (p.unit or "one") == "one" else None


def render_progress(p: Proposal) -> str:
    if p.kind != "solidarity" or not p.quantity:
        return ""
    unit, money = p.unit or "one", _money(p)
    share = min(100, int(p.pledged * 100 / p.quantity))
    label = (
        f"{format_amount(p.pledged, unit, money)} pledged of "
        f"{format_amount(p.quantity, unit, money)}"
    )
    received = format_amount(p.received, unit, money)
    return (
        f'<p class="progress"><label>{html.escape(label)} ({share}%)'
        f'<progress value="{share}" max="100">{share}%</progress></label>'
        f"<span>{html.escape(received)} received</span></p>"
    )


def render_card(p: Proposal, now: datetime, *, coop_name: str | None = None) -> str:
    facts: list[str] = []
    if p.quantity is not None and p.kind != "solidarity":
        facts.append(f"Quantity: {format_amount(p.quantity, p.unit or 'one')}")
    if p.kind != "solidarity":
        facts.append(
            f"Price: {format_amount(p.price, 'one', p.currency)}"
            if p.price is not None
            else "Price: negotiable"
        )
    if p.deadline is not None:
        facts.append(f"Deadline: {p.deadline.strftime('%Y-%m-%d %H:%M UTC')}")
    if is_closed(p, now):
        facts.append("Closed")
    tags = " ".join(f"#{t}" for t in p.tags)
    by = f'<p class="by">{html.escape(coop_name)}</p>' if coop_name else ""
    details = html.escape(p.details[:600]) if p.local else ""
    return (
        f'<article class="post card {p.kind}"><h3>'
        f'<span class="kind">{KIND_LABELS[p.kind]}</span> '
        f'<a href="{html.escape(safe_href(p.uri) or "")}">{html.escape(p.title)}</a></h3>{by}'
        + (f"<p>{details}</p>" if details else "")
        + render_progress(p)
        + ("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>")
        + (f'<p class="tags">{html.escape(tags)}</p>' if tags else "")
        + "</article>"
    )


def render_board(coop: LocalActor, urls: Urls, proposals: list[Proposal], now: datetime) -> str:
    sections = []
    for kind, title in KIND_TITLES.items():
        items = [p for p in proposals if p.kind == kind and not is_closed(p, now)]
        cards = "".join(render_card(p, now) for p in items) or "<p>Nothing open right now.</p>"
        sections.append(f'<section id="{kind}"><h2>{title}</h2>{cards}</section>')
    base = urls.profile_page(coop.username)
    return (
        "".join(sections)
        + f'<nav><a href="{html.escape(base)}/archive">Archive of closed items</a> · '
        f'<a href="{html.escape(urls.base)}/network">What our network publishes</a></nav>'
    )


def render_archive(coop: LocalActor, urls: Urls, proposals: list[Proposal], now: datetime) -> str:
    closed = [p for p in proposals if is_closed(p, now)]
    cards = "".join(render_card(p, now) for p in closed) or "<p>No closed items yet.</p>"
    body = (
        f"<header><h1>{html.escape(coop.name)}: archive</h1>"
        f'<p><a href="{html.escape(urls.profile_page(coop.username))}">Back to the board</a>'
        f"</p></header><main>{cards}</main>"
    )
    return render_page(f"Archive · {coop.name}", body)


def render_network(
    coop: LocalActor, urls: Urls, proposals: list[Proposal], names: dict[str, str], now: datetime
) -> str:
    open_items = [p for p in proposals if not is_closed(p, now)]
    cards = (
        "".join(
            render_card(p, now, coop_name=names.get(p.attributed_to, p.attributed_to))
            for p in open_items
        )
        or "<p>The coops we follow have nothing open right now.</p>"
    )
    body = (
        f"<header><h1>Our network</h1><p>What the coops {html.escape(coop.name)} follows "
        f'offer and need. <a href="{html.escape(urls.profile_page(coop.username))}">'
        f"Back to {html.escape(coop.name)}</a></p></header><main>{cards}</main>"
    )
    return render_page(f"Network · {coop.name}", body)


def render_tag(
    coop: LocalActor, urls: Urls, tag: str, proposals: list[Proposal], now: datetime
) -> str:
    cards = "".join(render_card(p, now) for p in proposals) or "<p>Nothing with this tag.</p>"
    body = (
        f"<header><h1>#{html.escape(tag)}</h1>"
        f'<p><a href="{html.escape(urls.profile_page(coop.username))}">'
        f"{html.escape(coop.name)}</a></p></header><main>{cards}</main>"
    )
    return render_page(f"#{tag} · {coop.name}", body)
