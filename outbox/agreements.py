"""Pure builders of the exchange activities (FEP-0837 agreements, ValueFlows terms).

Respond: ``Offer(Agreement)`` to the proposer; a pledge has no reciprocal.
Accept: ``Accept{object: offer, result: Agreement}``; Reject: ``Reject{object: offer}``.
Withdraw: ``Undo{object: offer}``.  Cancel by the owner: ``Update(Agreement
cancelled)``; by the responder: ``Reject{object: agreement}``.  Complete: a
receipt ``Create(Document)`` carrying the economic events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from federation.vocab import measure, proposal_context
from outbox.build import isoformat, isoformat_precise


def build_offer(
    *,
    activity_id: str,
    actor: str,
    proposer: str,
    proposal_id: str,
    unit: str,
    quantity: Decimal,
    reciprocal: Decimal | None,
    message: str = "",
) -> dict[str, Any]:
    agreement: dict[str, Any] = {
        "type": "Agreement",
        "stipulates": {
            "type": "Commitment",
            "satisfies": f"{proposal_id}#primary",
            "resourceQuantity": measure(unit, quantity),
        },
    }
    if reciprocal is not None:
        agreement["stipulatesReciprocal"] = {
            "type": "Commitment",
            "satisfies": f"{proposal_id}#reciprocal",
            "resourceQuantity": measure("one", reciprocal),
        }
    offer: dict[str, Any] = {
        "@context": proposal_context(),
        "id": activity_id,
        "type": "Offer",
        "actor": actor,
        "to": [proposer],
        "inReplyTo": proposal_id,
        "object": agreement,
    }
    if message:
        offer["content"] = message
    return offer


def build_agreement(
    *,
    agreement_id: str,
    owner: str,
    offer: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    """The Agreement the proposer makes of an accepted offer."""
    inner = offer.get("object") if isinstance(offer.get("object"), dict) else {}
    result: dict[str, Any] = {
        "id": agreement_id,
        "type": "Agreement",
        "attributedTo": owner,
        "agreementStatus": status,
    }
    for field, suffix in (("stipulates", "primary"), ("stipulatesReciprocal", "reciprocal")):
        commitment = inner.get(field) if isinstance(inner, dict) else None
        if isinstance(commitment, dict):
            result[field] = {
                "id": f"{agreement_id}#{suffix}",
                "type": "Commitment",
                "satisfies": commitment.get("satisfies"),
                "resourceQuantity": commitment.get("resourceQuantity"),
            }
            if status in ("cancelled", "completed"):
                result[field]["finished"] = True
    return result


def build_accept_offer(
    *, activity_id: str, actor: str, offer: dict[str, Any], agreement: dict[str, Any]
) -> dict[str, Any]:
    return {
        "@context": proposal_context(),
        "id": activity_id,
        "type": "Accept",
        "actor": actor,
        "to": [offer["actor"]],
        "object": offer["id"],
        "result": agreement,
    }


def build_reject(
    *, activity_id: str, actor: str, target: str, object_id: str, reason: str = ""
) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "@context": proposal_context(),
        "id": activity_id,
        "type": "Reject",
        "actor": actor,
        "to": [target],
        "object": object_id,
    }
    if reason:
        activity["content"] = reason
    return activity


def build_withdraw(*, activity_id: str, actor: str, proposer: str, offer_id: str) -> dict[str, Any]:
    return {
        "@context": proposal_context(),
        "id": activity_id,
        "type": "Undo",
        "actor": actor,
        "to": [proposer],
        "object": offer_id,
    }


def build_agreement_update(
    *, activity_id: str, actor: str, target: str, agreement: dict[str, Any], updated: datetime
) -> dict[str, Any]:
    return {
        "@context": proposal_context(),
        "id": activity_id,
        "type": "Update",
        "actor": actor,
        "to": [target],
        "object": {
            **agreement,
            "updated": isoformat_precise(updated),
        },
    }


def build_receipt(
    *,
    activity_id: str,
    receipt_id: str,
    actor: str,
    target: str,
    agreement: dict[str, Any],
    provider: str,
    receiver: str,
    action: str,
    at: datetime,
) -> dict[str, Any]:
    """The FEP-0837 confirmation: a Receipt document with the economic events."""
    events: list[dict[str, Any]] = []
    primary = agreement.get("stipulates")
    if isinstance(primary, dict):
        events.append(
            {
                "type": "EconomicEvent",
                "action": action,
                "fulfills": primary.get("id"),
                "provider": provider,
                "receiver": receiver,
                "hasPointInTime": isoformat(at),
                "resourceQuantity": primary.get("resourceQuantity"),
            }
        )
    reciprocal = agreement.get("stipulatesReciprocal")
    if isinstance(reciprocal, dict):
        events.append(
            {
                "type": "EconomicEvent",
                "action": "transfer",
                "fulfills": reciprocal.get("id"),
                "provider": receiver,
                "receiver": provider,
                "hasPointInTime": isoformat(at),
                "resourceQuantity": reciprocal.get("resourceQuantity"),
            }
        )
    return {
        "@context": proposal_context(),
        "id": activity_id,
        "type": "Create",
        "actor": actor,
        "to": [target],
        "object": {
            "id": receipt_id,
            "type": "Document",
            "name": "Receipt",
            "attributedTo": actor,
            "context": agreement["id"],
            "published": isoformat(at),
            "to": [target],
            "attachment": events,
        },
    }
