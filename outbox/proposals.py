"""Offers, needs and solidarity requests: validation, JSON and readable HTML.

All pure.  ``validate_spec`` turns what an admin typed (CLI, C2S, admin page)
into a checked ``ProposalSpec``; ``build_proposal`` makes the FEP-0837 object
(``["Note", "Proposal"]``) whose ``content`` a Mastodon reader sees;
``parse_proposal`` reads one back, ours or a peer's.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from federation.display import (
    clean_unit_label,
    format_amount,
    price_text,
    progress_text,
    received_text,
    solidarity_currency,
    when_text,
)
from federation.jsonld import AS_PUBLIC, get_id, has_type
from federation.vocab import (
    ACTIONS,
    GENERIC_TAGS,
    KIND_TAGS,
    KINDS,
    MAX_AMOUNT,
    PURPOSE_OF_KIND,
    UNITS,
    currency_code,
    currency_uri,
    measure,
    read_measure,
    resource_uri,
)
from outbox.build import isoformat, isoformat_precise
from outbox.errors import InvalidInput

TAG_RE = re.compile(r"^[\w]{1,40}$")
MAX_TITLE = 200
MAX_DETAILS = 5000
MAX_TAGS = 10
DEFAULT_ACTION = {"offer": "deliverService", "need": "transfer", "solidarity": "transfer"}


@dataclass(frozen=True, slots=True)
class ProposalSpec:
    kind: str
    title: str
    details: str = ""
    action: str = ""
    resource: str | None = None
    unit: str = "one"
    unit_label: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    currency: str | None = None
    tags: tuple[str, ...] = ()
    deadline: datetime | None = None
    pledged: Decimal = Decimal(0)
    received: Decimal = Decimal(0)
    closed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def number(field: str, value: Any) -> Decimal | None:
    """A non-negative finite amount a client typed (JSON, a form, the command line);
    None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidInput(field, "must be a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidInput(field, "must be a number") from exc
    if not amount.is_finite():
        raise InvalidInput(field, "must be a finite number")
    if amount < 0:
        raise InvalidInput(field, "must not be negative")
    if amount > MAX_AMOUNT:
        raise InvalidInput(field, "is too large")
    return amount


def _time(name: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(name, "must be an ISO 8601 date or time") from exc
    if moment.tzinfo is None:
        raise InvalidInput(name, "must include a time zone (e.g. Z)")
    return moment


def validate_spec(raw: dict[str, Any], *, now: datetime) -> ProposalSpec:
    """Check what an admin sent; raises InvalidInput naming the field."""
    kind = raw.get("kind")
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("title", "is required")
    if len(title) > MAX_TITLE:
        raise InvalidInput("title", f"is longer than {MAX_TITLE} characters")
    details = raw.get("details") or ""
    if not isinstance(details, str) or len(details) > MAX_DETAILS:
        raise InvalidInput("details", f"must be text of at most {MAX_DETAILS} characters")
    action = raw.get("action") or DEFAULT_ACTION[kind]
    if action not in ACTIONS:
        raise InvalidInput("action", f"must be one of {', '.join(sorted(ACTIONS))}")
    unit = raw.get("unit") or "one"
    if unit not in UNITS:
        raise InvalidInput("unit", f"unknown unit {unit!r}; known: {', '.join(sorted(UNITS))}")
    unit_label = None
    if raw.get("unit_label"):
        unit_label = clean_unit_label(raw["unit_label"])
        if unit_label is None:
            raise InvalidInput("unit_label", "must be a word or two naming one item, e.g. loaf")
        if unit != "one":
            raise InvalidInput("unit_label", f"names counted goods only, not amounts in {unit}")
    quantity = number("quantity", raw.get("quantity"))
    price_raw = raw.get("price")
    if isinstance(price_raw, str) and price_raw.strip().lower() == "negotiable":
        price_raw = None  # no price: the reciprocal is open to negotiation
    price = number("price", price_raw)
    currency = raw.get("currency")
    if currency is not None and (
        not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency)
    ):
        raise InvalidInput("currency", "must be a three-letter code such as EUR")
    if currency is None and (price is not None or kind != "solidarity"):
        # An offer's or need's reciprocal is always in a currency (EUR unless
        # told), priced or negotiable; parse_proposal reads it back.
        currency = "EUR"
    deadline = _time("deadline", raw.get("deadline"))
    if deadline is not None and deadline <= now:
        raise InvalidInput("deadline", "is in the past")
    raw_tags = raw.get("tags") or []
    if isinstance(raw_tags, str):
        raw_tags = [t for t in re.split(r"[,\s]+", raw_tags) if t]
    if not isinstance(raw_tags, list) or len(raw_tags) > MAX_TAGS:
        raise InvalidInput("tags", f"must be a list of at most {MAX_TAGS} words")
    tags: list[str] = []
    for tag in raw_tags:
        word = str(tag).lstrip("#")
        if not TAG_RE.match(word):
            raise InvalidInput("tags", f"{tag!r} is not a single word")
        if word.lower() not in GENERIC_TAGS and word.lower() not in tags:
            tags.append(word.lower())
    resource = raw.get("resource")
    if resource is not None and (not isinstance(resource, str) or not resource.strip()):
        raise InvalidInput("resource", "must be a word or a URL")
    if kind == "solidarity":
        if quantity is None or quantity == 0:
            raise InvalidInput("quantity", "a solidarity request needs a target above 0")
        if deadline is None:
            raise InvalidInput("deadline", "a solidarity request needs a deadline")
    return ProposalSpec(
        kind=kind,
        title=title.strip(),
        details=details.strip(),
        action=action,
        resource=resource_uri(resource.strip()) if resource else None,
        unit=unit,
        unit_label=unit_label,
        quantity=quantity,
        price=price,
        currency=currency.upper() if currency else None,
        tags=tuple(tags),
        deadline=deadline,
    )


def hashtags(spec: ProposalSpec) -> list[str]:
    return [KIND_TAGS[spec.kind], *spec.tags]


def render_content(spec: ProposalSpec, *, tag_url: str) -> str:
    """The post Mastodon readers see: only tags its sanitizer keeps."""
    label = {"offer": "OFFER", "need": "NEED", "solidarity": "SOLIDARITY"}[spec.kind]
    closed = "CLOSED · " if spec.closed else ""
    parts = [f"<p><strong>{closed}{label}:</strong> {html.escape(spec.title)}</p>"]
    for paragraph in (p.strip() for p in spec.details.split("\n\n")):
        if paragraph:
            parts.append(f"<p>{html.escape(paragraph).replace(chr(10), '<br>')}</p>")
    money = solidarity_currency(spec.kind, spec.unit, spec.currency)
    unit_label = spec.unit_label
    items: list[str] = []
    if spec.quantity is not None:
        name = "Target" if spec.kind == "solidarity" else "Quantity"
        items.append(f"{name}: {format_amount(spec.quantity, spec.unit, money, unit_label)}")
    if spec.kind != "solidarity":
        items.append(f"Price: {price_text(spec.price, spec.currency, spec.unit, unit_label)}")
    if spec.deadline is not None:
        items.append(f"Deadline: {when_text(spec.deadline)}")
    if spec.kind == "solidarity" and spec.quantity:
        progress = progress_text(spec.pledged, spec.quantity, spec.unit, money, unit_label)
        received = received_text(spec.received, spec.unit, money, unit_label)
        items.append(f"Progress: {progress}, {received}")
    if items:
        parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
    links = " ".join(
        f'<a href="{html.escape(tag_url + t.lower())}" class="mention hashtag" rel="tag">'
        f"#<span>{html.escape(t)}</span></a>"
        for t in hashtags(spec)
    )
    parts.append(f"<p>{links}</p>")
    return "".join(parts)


def build_proposal(
    spec: ProposalSpec,
    *,
    object_id: str,
    actor: str,
    followers: str,
    published: datetime,
    updated: datetime | None,
    tag_url: str,
) -> dict[str, Any]:
    """The proposal object (without ``@context``; the activity carries it)."""
    # A price per unit (FEP-0837 ``unitBased``): the Intent is one unit at that
    # price, responses take multiples of it, and the total is availableQuantity.
    unit_based = spec.kind != "solidarity" and spec.unit != "one" and spec.price is not None
    primary: dict[str, Any] = {
        "id": f"{object_id}#primary",
        "type": "Intent",
        "action": spec.action,
        "resourceQuantity": measure(spec.unit, Decimal(1) if unit_based else spec.quantity),
    }
    if unit_based and spec.quantity is not None:
        primary["availableQuantity"] = measure(spec.unit, spec.quantity)
    if spec.unit_label:
        primary["unitLabel"] = spec.unit_label
    if spec.resource:
        primary["resourceConformsTo"] = spec.resource
    elif spec.kind == "solidarity" and spec.unit == "one" and spec.currency:
        primary["resourceConformsTo"] = currency_uri(spec.currency)
    if spec.deadline is not None:
        primary["due"] = isoformat(spec.deadline)
    if spec.kind == "solidarity":
        primary["pledgedQuantity"] = measure(spec.unit, spec.pledged)
        primary["receivedQuantity"] = measure(spec.unit, spec.received)
    if spec.closed:
        primary["finished"] = True
    obj: dict[str, Any] = {
        "id": object_id,
        "type": ["Note", "Proposal"],
        "purpose": PURPOSE_OF_KIND[spec.kind],
        "proposalKind": spec.kind,
        "attributedTo": actor,
        "name": spec.title,
        "content": render_content(spec, tag_url=tag_url),
        "published": isoformat(published),
        "url": object_id,
        "to": [AS_PUBLIC],
        "cc": [followers],
        "tag": [
            {"type": "Hashtag", "name": f"#{t}", "href": tag_url + t.lower()}
            for t in hashtags(spec)
        ],
        "publishes": primary,
    }
    if updated is not None:
        obj["updated"] = isoformat_precise(updated)
    if spec.deadline is not None:
        obj["hasEnd"] = isoformat(spec.deadline)
    if spec.kind != "solidarity":
        reciprocal: dict[str, Any] = {
            "id": f"{object_id}#reciprocal",
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": currency_uri(spec.currency or "EUR"),
            "resourceQuantity": measure("one", spec.price),
        }
        obj["reciprocal"] = reciprocal
        obj["unitBased"] = unit_based
    return obj


def is_proposal(obj: Any) -> bool:
    return isinstance(obj, dict) and (
        has_type(obj, "Proposal") or ("purpose" in obj and isinstance(obj.get("publishes"), dict))
    )


def parse_proposal(obj: dict[str, Any]) -> ProposalSpec:
    """Read a proposal (ours or a peer's) back into a spec; InvalidInput if unreadable."""
    purpose = obj.get("purpose")
    kind = obj.get("proposalKind")
    if kind not in KINDS:
        kind = "offer" if purpose == "offer" else "need" if purpose == "request" else None
    if kind is None:
        raise InvalidInput("purpose", "must be offer or request")
    primary = obj.get("publishes")
    if not isinstance(primary, dict):
        raise InvalidInput("publishes", "is required")
    title = obj.get("name")
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("name", "is required")
    unit, quantity = read_measure(primary.get("resourceQuantity"))
    if obj.get("unitBased") is True:
        # resourceQuantity is the unit the price is for; the total is available.
        _, quantity = read_measure(primary.get("availableQuantity"))
    raw_reciprocal = obj.get("reciprocal")
    reciprocal: dict[str, Any] = raw_reciprocal if isinstance(raw_reciprocal, dict) else {}
    _, price = read_measure(reciprocal.get("resourceQuantity"))
    currency = currency_code(str(reciprocal.get("resourceConformsTo", ""))) or None
    if kind == "solidarity" and currency is None:
        currency = currency_code(str(primary.get("resourceConformsTo", ""))) or None
    _, pledged = read_measure(primary.get("pledgedQuantity"))
    _, received = read_measure(primary.get("receivedQuantity"))
    deadline = None
    for raw in (obj.get("hasEnd"), primary.get("due")):
        if isinstance(raw, str):
            try:
                deadline = _time("deadline", raw)
            except InvalidInput:
                deadline = None
            if deadline is not None:
                break
    tags = tuple(
        str(t["name"]).lstrip("#").lower()
        for t in obj.get("tag") or []
        if isinstance(t, dict)
        and t.get("type") == "Hashtag"
        and isinstance(t.get("name"), str)
        and str(t["name"]).lstrip("#").lower() not in GENERIC_TAGS
    )[:MAX_TAGS]
    action = primary.get("action")
    resource = get_id(primary.get("resourceConformsTo"))
    if kind == "solidarity" and resource and currency_code(resource):
        resource = None
    return ProposalSpec(
        kind=kind,
        title=title.strip()[:MAX_TITLE],
        details=plain_text(obj.get("content")),
        action=action if action in ACTIONS else DEFAULT_ACTION[kind],
        resource=resource,
        unit=unit if unit in UNITS else "one",
        unit_label=clean_unit_label(primary.get("unitLabel")) if unit in (None, "one") else None,
        quantity=quantity,
        price=price,
        currency=currency,
        tags=tags,
        deadline=deadline,
        pledged=pledged or Decimal(0),
        received=received or Decimal(0),
        closed=primary.get("finished") is True,
    )


def plain_text(content: Any) -> str:
    """The text of an HTML ``content``, for search (never rendered back as HTML)."""
    if not isinstance(content, str):
        return ""
    text = re.sub(r"<br\s*/?>|</p>|</li>", "\n", content[: MAX_DETAILS * 2])
    return html.unescape(re.sub(r"<[^>]*>", "", text)).strip()[:MAX_DETAILS]


def with_progress(spec: ProposalSpec, *, pledged: Decimal, received: Decimal) -> ProposalSpec:
    return replace(spec, pledged=pledged, received=received)
