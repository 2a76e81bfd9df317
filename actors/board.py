"""The public board's facts: whether a proposal is closed, what its card lists,
and how far a solidarity request has come.

Pure functions of a stored ``Proposal``; ``actors.pages`` lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from federation.store import Proposal
from federation.vocab import format_amount

KIND_TITLES = {"offer": "Offers", "need": "Needs", "solidarity": "Solidarity requests"}
KIND_LABELS = {"offer": "Offer", "need": "Need", "solidarity": "Solidarity"}


@dataclass(frozen=True, slots=True)
class Progress:
    label: str
    share: int
    received: str


def is_closed(p: Proposal, now: datetime) -> bool:
    return p.status != "open" or (p.deadline is not None and p.deadline < now)


def _money(p: Proposal) -> str | None:
    return p.currency if p.kind == "solidarity" and (p.unit or "one") == "one" else None


def progress_of(p: Proposal) -> Progress | None:
    """How much a solidarity request has been pledged and received; None for others."""
    if p.kind != "solidarity" or not p.quantity:
        return None
    unit, money = p.unit or "one", _money(p)
    label = (
        f"{format_amount(p.pledged, unit, money)} pledged of "
        f"{format_amount(p.quantity, unit, money)}"
    )
    share = min(100, int(p.pledged * 100 / p.quantity))
    return Progress(label, share, format_amount(p.received, unit, money))


def facts_of(p: Proposal, now: datetime) -> list[str]:
    """The lines of a card: quantity, price, deadline, closed."""
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
    return facts
