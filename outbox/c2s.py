"""Client-to-server input, API tokens, and the admin's JSON views of the market.

``proposal_fields`` maps what a client POSTs to the outbox (coopfed's simple
form or a FEP-0837 object) onto the raw dict of ``validate_spec``;
``offer_fields`` does the same for a response (``Offer``).  Both are pure and
raise ``InvalidInput`` naming the field.  ``*_json`` are the shapes of
``/api/*`` and of the CLI's ``--json``.  API tokens are random and stored only
as their SHA-256.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from federation.context import NodeContext
from federation.credentials import hash_token
from federation.display import exchange_amount, proposal_words, unit_label_in
from federation.jsonld import as_list, get_id, has_type
from federation.store import Exchange, LocalActor, Match, Proposal
from federation.vocab import currency_code
from outbox.errors import InvalidInput
from outbox.proposals import number, plain_text

MAX_MESSAGE = 2000
HTML_RE = re.compile(r"<(p|br|a|strong|em|b|i|ul|ol|li|span|h[1-6])\b[^>]*>", re.IGNORECASE)

# -- API tokens -----------------------------------------------------------------


async def issue_token(node: NodeContext, actor: LocalActor, name: str) -> tuple[int, str]:
    """A new bearer token for ``actor``: (id, token).  Only its hash is kept."""
    token = secrets.token_urlsafe(32)
    token_id = await node.store.add_token(actor.id, name, hash_token(token))
    return token_id, token


# -- client input -----------------------------------------------------------------


def text_of(field: str, value: Any) -> str:
    """Plain text from a client: HTML (as in a FEP-0837 ``content``) is reduced to text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    return plain_text(value) if HTML_RE.search(value) else value


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(key, "must be an object")
    return value


def _number_and_unit(field: str, value: Any) -> tuple[Any, str | None]:
    """A number, or a Measure ``{hasUnit, hasNumericalValue}``: (number, unit)."""
    if isinstance(value, dict):
        unit = value.get("hasUnit")
        if unit is not None and not isinstance(unit, str):
            raise InvalidInput(field, "hasUnit must be a unit name")
        return value.get("hasNumericalValue"), unit
    return value, None


def is_proposal_input(obj: dict[str, Any]) -> bool:
    return has_type(obj, "Proposal") or any(
        key in obj for key in ("proposalKind", "kind", "purpose", "publishes")
    )


def kind_of(obj: dict[str, Any]) -> Any:
    """The kind a client names (``proposalKind``/``kind``), else the FEP ``purpose``."""
    explicit = obj.get("proposalKind", obj.get("kind"))
    if explicit is not None:
        return explicit
    return {"offer": "offer", "request": "need"}.get(str(obj.get("purpose")))


def proposal_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields a client gave, as ``validate_spec`` names them (absent ones left out).

    ``kind`` is only taken from ``proposalKind``/``kind`` here: an Update of a
    solidarity request carries ``purpose: request`` too (see ``kind_of``).
    """
    fields: dict[str, Any] = {}
    explicit = obj.get("proposalKind", obj.get("kind"))
    if explicit is not None:
        fields["kind"] = explicit
    for key in ("name", "title"):
        if key in obj:
            fields["title"] = obj[key]
    if "details" in obj:
        fields["details"] = text_of("details", obj["details"])
    elif "content" in obj:
        fields["details"] = text_of("content", obj["content"])
    primary = _object(obj, "publishes")
    reciprocal = _object(obj, "reciprocal")
    # What is offered or asked: the simple fields win over the Intent's.
    measure_key = "resourceQuantity" if "resourceQuantity" in primary else "effortQuantity"
    if "quantity" in obj:
        value, unit = _number_and_unit("quantity", obj["quantity"])
        fields["quantity"] = value
        if unit is not None:
            fields["unit"] = unit
    elif measure_key in primary:
        if not isinstance(primary[measure_key], dict):
            raise InvalidInput("publishes", f"{measure_key} must be a Measure")
        value, unit = _number_and_unit("publishes", primary[measure_key])
        if obj.get("unitBased") is True:
            # FEP-0837: the Intent is one unit at the price; the total is available.
            value, _ = _number_and_unit("publishes", primary.get("availableQuantity"))
        if value is not None:
            fields["quantity"] = value
        if unit is not None:
            fields["unit"] = unit
    if "unit" in obj:
        fields["unit"] = obj["unit"]
    for key, where in (("unit_label", obj), ("unitLabel", obj), ("unitLabel", primary)):
        if key in where:
            fields["unit_label"] = where[key]
            break
    if "action" in obj:
        fields["action"] = obj["action"]
    elif "action" in primary:
        fields["action"] = primary["action"]
    if "resource" in obj:
        fields["resource"] = obj["resource"]
    elif "resourceConformsTo" in primary:
        conforms = get_id(primary["resourceConformsTo"])
        if conforms and currency_code(conforms):
            fields["currency"] = currency_code(conforms)  # a fund: money is the resource
        elif conforms:
            fields["resource"] = conforms
    # What is asked in return.
    if "price" in obj:
        fields["price"], _ = _number_and_unit("price", obj["price"])
    elif isinstance(reciprocal.get("resourceQuantity"), dict):
        value, _ = _number_and_unit("reciprocal", reciprocal["resourceQuantity"])
        if value is not None:
            fields["price"] = value
    if "currency" in obj:
        fields["currency"] = obj["currency"]
    elif "resourceConformsTo" in reciprocal:
        conforms = get_id(reciprocal["resourceConformsTo"]) or ""
        if not currency_code(conforms):
            raise InvalidInput("reciprocal", "resourceConformsTo must name a currency")
        fields["currency"] = currency_code(conforms)
    for key in ("deadline", "hasEnd"):
        if key in obj:
            fields["deadline"] = obj[key]
            break
    else:
        if "due" in primary:
            fields["deadline"] = primary["due"]
    if "tags" in obj:
        fields["tags"] = obj["tags"]
    elif "tag" in obj:
        names = []
        for tag in as_list(obj["tag"]):
            if isinstance(tag, str):
                names.append(tag)
            elif isinstance(tag, dict) and has_type(tag, "Hashtag"):
                names.append(str(tag.get("name", "")))
        fields["tags"] = names
    return fields


def wants_close(obj: dict[str, Any]) -> bool:
    """An Update that marks the proposal finished (``finished`` or ``publishes.finished``)."""
    primary = obj.get("publishes")
    return obj.get("finished") is True or (
        isinstance(primary, dict) and primary.get("finished") is True
    )


def offer_fields(activity: dict[str, Any]) -> tuple[str, Decimal, Decimal | None, str]:
    """A response from a client: (proposal URI, quantity, reciprocal amount, message).

    Either ``Offer{object: Agreement{stipulates, stipulatesReciprocal}, inReplyTo}``
    or the simple ``Offer{inReplyTo, quantity, price, content}``.
    """
    agreement = activity.get("object")
    if agreement is not None and not (
        isinstance(agreement, dict) and has_type(agreement, "Agreement")
    ):
        raise InvalidInput("object", "an Offer carries an Agreement")
    agreement = agreement or {}
    primary = _object(agreement, "stipulates")
    reciprocal = _object(agreement, "stipulatesReciprocal")
    proposal = get_id(activity.get("inReplyTo"))
    if not proposal:
        satisfies = get_id(primary.get("satisfies"))
        proposal = satisfies.split("#")[0] if satisfies else None
    if not proposal:
        raise InvalidInput("inReplyTo", "must name the proposal you answer")
    if "quantity" in activity:
        raw_quantity, _ = _number_and_unit("quantity", activity["quantity"])
    else:
        raw_quantity, _ = _number_and_unit("quantity", primary.get("resourceQuantity"))
    quantity = number("quantity", raw_quantity)
    if quantity is None or quantity == 0:
        raise InvalidInput("quantity", "is required and must be above 0")
    if "price" in activity:
        raw_price, _ = _number_and_unit("price", activity["price"])
    else:
        raw_price, _ = _number_and_unit("price", reciprocal.get("resourceQuantity"))
    price = number("price", raw_price)
    message = text_of("content", activity.get("content", activity.get("message")))
    if len(message) > MAX_MESSAGE:
        raise InvalidInput("content", f"is longer than {MAX_MESSAGE} characters")
    return proposal, quantity, price, message.strip()


# -- views ------------------------------------------------------------------------


def amount_text(value: Decimal | None) -> str | None:
    """A decimal as plain text ("200", "2.5"), never in exponent notation."""
    if value is None:
        return None
    return format(value.normalize() if value == value.to_integral() else value, "f")


def effective_status(p: Proposal, now: datetime) -> str:
    """A proposal past its deadline shows as closed, even before its close job ran."""
    if p.status == "open" and p.deadline is not None and p.deadline < now:
        return "closed"
    return p.status


def proposal_json(p: Proposal, now: datetime) -> dict[str, Any]:
    """A proposal's fields, and how they read (``display``: the same words as the pages)."""
    return {
        "uri": p.uri,
        "coop": p.attributed_to,
        "local": p.local,
        "kind": p.kind,
        "title": p.title,
        "details": p.details,
        "action": p.action,
        "resource": p.resource,
        "quantity": amount_text(p.quantity),
        "unit": p.unit,
        "price": amount_text(p.price),
        "currency": p.currency,
        "tags": list(p.tags),
        "deadline": p.deadline.isoformat() if p.deadline else None,
        "status": effective_status(p, now),
        "pledged": amount_text(p.pledged),
        "received": amount_text(p.received),
        "published": p.published.isoformat(),
        "updated": p.updated.isoformat() if p.updated else None,
        "unit_label": unit_label_in(p.body),
        "display": proposal_words(p),
    }


def exchange_json(
    e: Exchange, events: list[dict[str, Any]] | None = None, proposal: Proposal | None = None
) -> dict[str, Any]:
    """An exchange's fields; ``amount`` reads "20 loaves for €60" (with its proposal)."""
    data: dict[str, Any] = {
        "id": e.id,
        "role": e.role,
        "state": e.state,
        "counterparty": e.responder if e.role == "proposer" else e.proposer,
        "proposal": e.proposal_uri,
        "proposer": e.proposer,
        "responder": e.responder,
        "pledge": e.pledge,
        "quantity": amount_text(e.quantity),
        "unit": e.unit,
        "reciprocal": amount_text(e.reciprocal_quantity),
        "message": e.message,
        "offer": e.offer_id,
        "agreement": e.agreement_uri,
        "created_at": e.created_at.isoformat(),
        "updated_at": e.updated_at.isoformat(),
        "title": proposal.title if proposal else None,
        "amount": exchange_amount(e, proposal),
    }
    if events is not None:
        data["events"] = [
            {
                "event": ev["event"],
                "from": ev["from_state"],
                "to": ev["to_state"],
                "by": ev["by_actor"],
                "activity": ev["activity_id"],
                "refused": ev["refused"],
                "at": ev["at"].isoformat(),
            }
            for ev in events
        ]
    return data


def respond_command(theirs: Proposal, ours: Proposal | None) -> str:
    """The one command that answers ``theirs`` (a match), with a sensible amount."""
    quantity = theirs.quantity or (ours.quantity if ours else None) or Decimal(1)
    if ours is not None and ours.quantity and theirs.quantity:
        quantity = min(ours.quantity, theirs.quantity)
    command = f"coopfed respond {theirs.uri} --quantity {amount_text(quantity)}"
    if theirs.kind != "solidarity" and theirs.price is not None:
        total = theirs.price * quantity if (theirs.unit or "one") != "one" else theirs.price
        command += f" --price {amount_text(total)}"
    return command


def match_json(
    m: Match, ours: Proposal | None, theirs: Proposal | None, now: datetime
) -> dict[str, Any]:
    open_ = theirs is not None and effective_status(theirs, now) == "open"
    return {
        "id": m.id,
        "reason": m.reason,
        "created_at": m.created_at.isoformat(),
        "ours": proposal_json(ours, now) if ours else {"uri": m.our_proposal},
        "theirs": proposal_json(theirs, now) if theirs else {"uri": m.their_proposal},
        "respond": respond_command(theirs, ours) if open_ and theirs else None,
    }
