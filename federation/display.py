"""How the market reads to a person: amounts, prices, progress, coops, resources.

One module for every place that shows the market (the public pages, the admin
pages, the CLI and the text of a proposal's post), so that "20 loaves for €60"
reads the same everywhere.  Pure functions of values; the kernel's floor, so
that every package may use them.

Counted goods travel with ``hasUnit: one``; a proposal may name what one of them
is (``unitLabel``: "loaf", "crate"), and amounts of it read "20 loaves".
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from federation.store.records import Exchange, Proposal

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
UNIT_ABBREVIATIONS = {
    "one": "",
    "hour": "h",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "kilogram": "kg",
    "gram": "g",
    "tonne": "t",
    "litre": "l",
    "metre": "m",
    "squareMetre": "m²",
    "cubicMetre": "m³",
    "kilowattHour": "kWh",
}
# What one counted thing is called: a word or two, letters only (a peer's label
# that is not is dropped, not shown).
UNIT_LABEL_RE = re.compile(r"^[^\W\d_]+(?:[ -][^\W\d_]+){0,2}$")
MAX_UNIT_LABEL = 30
IRREGULAR_PLURALS = {
    "loaf": "loaves",
    "shelf": "shelves",
    "half": "halves",
    "leaf": "leaves",
    "knife": "knives",
    "calf": "calves",
    "person": "people",
    "child": "children",
    "sheep": "sheep",
    "fish": "fish",
}


def clean_unit_label(label: object) -> str | None:
    """A unit label fit to show (trimmed, lower case), or None."""
    if not isinstance(label, str):
        return None
    text = " ".join(label.split()).lower()
    if not text or len(text) > MAX_UNIT_LABEL or not UNIT_LABEL_RE.match(text):
        return None
    return text


def plural(word: str) -> str:
    """English plural of a unit label ("loaf" → "loaves", "crate" → "crates")."""
    head, _, last = word.rpartition(" ")
    lower = last.lower()
    if lower in IRREGULAR_PLURALS:
        many = IRREGULAR_PLURALS[lower]
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        many = last + "es"
    elif lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        many = last[:-1] + "ies"
    else:
        many = last + "s"
    return f"{head} {many}" if head else many


def number_text(value: Decimal) -> str:
    """1000 → "1,000"; 2.5 → "2.50"; never exponent notation."""
    if value == value.to_integral():
        return f"{value.normalize():,f}"
    return f"{value:,.2f}"


def money(value: Decimal, currency: str | None) -> str:
    """€60, $5, 1,000 CHF; a bare number without a currency."""
    text = number_text(value)
    if not currency:
        return text
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


def format_amount(
    value: Decimal, unit: str, currency: str | None = None, label: str | None = None
) -> str:
    """An amount with its unit: "€3,000", "500 kg", "20 loaves", "1 loaf", "12"."""
    if currency:
        return money(value, currency)
    if unit == "one" and label:
        return f"{number_text(value)} {label if value == 1 else plural(label)}"
    return f"{number_text(value)} {UNIT_ABBREVIATIONS.get(unit, unit)}".strip()


def unit_name(unit: str, label: str | None = None) -> str:
    """What one unit is called, for "per …": "kg", "loaf", "unit"."""
    if unit == "one":
        return label or "unit"
    return UNIT_ABBREVIATIONS.get(unit) or unit


def solidarity_currency(kind: str, unit: str | None, currency: str | None) -> str | None:
    """The currency a solidarity request counts in (money is counted in ``one``)."""
    return currency if kind == "solidarity" and (unit or "one") == "one" else None


def price_text(
    price: Decimal | None, currency: str | None, unit: str, label: str | None = None
) -> str:
    """A proposal's price: "€60", "€3 per kg", or "negotiable"."""
    if price is None:
        return "negotiable"
    per = f" per {unit_name(unit)}" if unit != "one" else ""
    return money(price, currency or "EUR") + per


def offer_text(
    quantity: Decimal | None,
    unit: str,
    label: str | None,
    price: Decimal | None,
    currency: str | None,
    *,
    total: bool = False,
) -> str:
    """An offer or need in a few words: "20 loaves for €60", "500 kg, price negotiable".

    ``price`` is per unit of a measured amount ("40 h for €35 per h") unless ``total``
    (an exchange's reciprocal is always the whole sum).
    """
    amount = format_amount(quantity, unit, None, label) if quantity is not None else ""
    if price is None:
        return f"{amount}, price negotiable" if amount else "price negotiable"
    paid = money(price, currency or "EUR") if total else price_text(price, currency, unit, label)
    return f"{amount} for {paid}" if amount else paid


def share_of(part: Decimal, whole: Decimal | None) -> int:
    """How far ``part`` is of ``whole`` in whole percent (0..100)."""
    if not whole:
        return 0
    return max(0, min(100, int(part * 100 / whole)))


def progress_text(
    pledged: Decimal, target: Decimal, unit: str, currency: str | None, label: str | None = None
) -> str:
    """A solidarity request's pledges: "€1,000 pledged of €3,000 (33%)"."""
    return (
        f"{format_amount(pledged, unit, currency, label)} pledged of "
        f"{format_amount(target, unit, currency, label)} ({share_of(pledged, target)}%)"
    )


def received_text(received: Decimal, unit: str, currency: str | None, label: str | None) -> str:
    return f"{format_amount(received, unit, currency, label)} received"


def when_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def coop_label(uri: str, name: str | None = None, handle: str | None = None) -> str:
    """A coop as people know it: "Rye Bakery (@bakery@bakery.example)".

    Without a known name, the handle; without a handle, the host of its URL.
    """
    at = f"@{handle.lstrip('@')}" if handle else None
    name = " ".join((name or "").split())
    if name and at:
        return f"{name} ({at})"
    if at:
        return at
    host = urlsplit(uri).netloc
    return f"{name} ({host})" if name and host else name or host or uri


def resource_name(resource: str | None) -> str:
    """A resource kind in words: ".../resource/rye-grain" → "rye grain"."""
    if not resource:
        return ""
    path = urlsplit(resource).path.rstrip("/") if "://" in resource else resource
    last = path.rsplit("/", 1)[-1] or resource
    return last.replace("-", " ").replace("_", " ")


def unit_label_in(body: object) -> str | None:
    """The unit label a stored proposal object carries (in its primary Intent)."""
    if not isinstance(body, dict):
        return None
    primary = body.get("publishes")
    if not isinstance(primary, dict):
        return None
    unit = primary.get("resourceQuantity")
    if isinstance(unit, dict) and unit.get("hasUnit") not in (None, "one"):
        return None
    return clean_unit_label(primary.get("unitLabel"))


# -- a stored proposal or exchange, in words ---------------------------------------


def is_closed(p: Proposal, now: datetime) -> bool:
    """Closed, or past its deadline (before its close job ran)."""
    return p.status != "open" or (p.deadline is not None and p.deadline < now)


def proposal_words(p: Proposal) -> dict[str, str | None]:
    """How a proposal reads: its amount, price, terms in a line, and pledges.

    ``summary`` is the line of the market ("20 loaves for €60", "€1,000 pledged of
    €3,000 (33%)"); the others are its parts (None where they don't apply).
    """
    unit, label = p.unit or "one", unit_label_in(p.body)
    currency = solidarity_currency(p.kind, unit, p.currency)
    amount = format_amount(p.quantity, unit, currency, label) if p.quantity is not None else None
    words: dict[str, str | None] = {
        "amount": amount,
        "price": None,
        "progress": None,
        "received": None,
        "deadline": when_text(p.deadline) if p.deadline else None,
    }
    if p.kind == "solidarity":
        if p.quantity:
            words["progress"] = progress_text(p.pledged, p.quantity, unit, currency, label)
            words["received"] = received_text(p.received, unit, currency, label)
        words["summary"] = words["progress"] or amount or ""
    else:
        words["price"] = price_text(p.price, p.currency, unit, label)
        words["summary"] = offer_text(p.quantity, unit, label, p.price, p.currency)
    return words


def proposal_facts(p: Proposal, now: datetime) -> list[str]:
    """The lines of a card: quantity, price, deadline, closed."""
    words = proposal_words(p)
    facts: list[str] = []
    if words["amount"] and p.kind != "solidarity":
        facts.append(f"Quantity: {words['amount']}")
    if words["price"]:
        facts.append(f"Price: {words['price']}")
    if words["deadline"]:
        facts.append(f"Deadline: {words['deadline']}")
    if is_closed(p, now):
        facts.append("Closed")
    return facts


def exchange_amount(e: Exchange, p: Proposal | None) -> str:
    """What an exchange moves: "20 loaves for €60", "€500 pledged", "8 h"."""
    unit = e.unit or "one"
    label = unit_label_in(p.body) if p is not None else None
    currency = p.currency if p is not None else None
    if e.quantity is None:
        return ""
    if e.pledge:
        kind = p.kind if p is not None else "solidarity"
        money_in = solidarity_currency(kind, unit, currency)
        return f"{format_amount(e.quantity, unit, money_in, label)} pledged"
    if e.reciprocal_quantity is None:
        return format_amount(e.quantity, unit, None, label)
    return offer_text(e.quantity, unit, label, e.reciprocal_quantity, currency, total=True)
