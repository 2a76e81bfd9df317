"""Fixed ids, times and inputs that the golden tests of the proposal and exchange
builders share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from federation.vocab import proposal_context
from outbox import agreements, build
from outbox.proposals import (
    ProposalSpec,
    build_proposal,
    validate_spec,
)

BASE = "https://coop.example"
ACTOR = f"{BASE}/users/coop"
FOLLOWERS = f"{ACTOR}/followers"
TAGS = f"{BASE}/tags/"
PEER = "https://other.example/users/bakery"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
EUR = "https://www.wikidata.org/wiki/Q4916"
NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2025, 6, 2, 10, 30, 15, 123456, tzinfo=UTC)

# The context of our actors and activities, spelled out on purpose: a change of
# the context every peer reads must show here.
AP_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
        "schema": "http://schema.org#",
        "PropertyValue": "schema:PropertyValue",
        "value": "schema:value",
        "Hashtag": "as:Hashtag",
        "sensitive": "as:sensitive",
        "webfinger": {
            "@id": "https://purl.archive.org/socialweb/webfinger#webfinger",
            "@type": "xsd:string",
        },
        "xsd": "http://www.w3.org/2001/XMLSchema#",
    },
]

OFFER_INPUT: dict[str, Any] = {
    "kind": "offer",
    "title": "Bookkeeping for coops",
    "details": "Monthly books.\nVAT returns too.\n\nAsk us.",
    "unit": "hour",
    "quantity": "40",
    "price": "35.50",
    "currency": "eur",
    "tags": ["#accounting", "Services", "CoopOffer"],
    "resource": "bookkeeping",
}
NEED_INPUT: dict[str, Any] = {
    "kind": "need",
    "title": "Organic flour",
    "quantity": "200",
    "unit": "kilogram",
    "tags": "flour, bakery",
    "resource": "flour",
    "deadline": "2025-07-01T00:00:00Z",
}
SOLIDARITY_INPUT: dict[str, Any] = {
    "kind": "solidarity",
    "title": "Flood repair fund",
    "quantity": "5000",
    "currency": "EUR",
    "deadline": "2025-07-15T23:59:59Z",
    "tags": ["flood"],
}


def hashtag_links(*names: str) -> str:
    return " ".join(
        f'<a href="{TAGS}{n.lower()}" class="mention hashtag" rel="tag">#<span>{n}</span></a>'
        for n in names
    )


def hashtags(*names: str) -> list[dict[str, str]]:
    return [{"type": "Hashtag", "name": f"#{n}", "href": f"{TAGS}{n.lower()}"} for n in names]


def proposal(spec: ProposalSpec, token: str, *, updated: datetime | None = None) -> dict[str, Any]:
    return build_proposal(
        spec,
        object_id=f"{BASE}/proposals/{token}",
        actor=ACTOR,
        followers=FOLLOWERS,
        published=NOW,
        updated=updated,
        tag_url=TAGS,
    )


PROPOSAL = f"{BASE}/proposals/o1"
FUND = f"{BASE}/proposals/s1"
OFFER_ID = "https://other.example/activities/of1"
AGREEMENT = f"{BASE}/agreements/g1"


def offer() -> dict[str, Any]:
    return agreements.build_offer(
        activity_id=OFFER_ID,
        actor=PEER,
        proposer=ACTOR,
        proposal_id=PROPOSAL,
        unit="hour",
        quantity=Decimal(8),
        reciprocal=Decimal("284.00"),
        message="Next week?",
    )


def pledge() -> dict[str, Any]:
    return agreements.build_offer(
        activity_id="https://other.example/activities/of2",
        actor=PEER,
        proposer=ACTOR,
        proposal_id=FUND,
        unit="one",
        quantity=Decimal(1000),
        reciprocal=None,
    )


def commitment(suffix: str, satisfies: str, unit: str, value: str) -> dict[str, Any]:
    return {
        "id": f"{AGREEMENT}#{suffix}",
        "type": "Commitment",
        "satisfies": satisfies,
        "resourceQuantity": {"hasUnit": unit, "hasNumericalValue": value},
    }


def emitted() -> dict[str, dict[str, Any]]:
    """One of every marketplace activity a node sends."""
    objects = {
        "offer": proposal(validate_spec(OFFER_INPUT, now=NOW), "o1"),
        "need": proposal(validate_spec(NEED_INPUT, now=NOW), "n1"),
        "solidarity": proposal(validate_spec(SOLIDARITY_INPUT, now=NOW), "s1"),
    }
    activities: dict[str, dict[str, Any]] = {}
    for kind, obj in objects.items():
        activities[f"Create({kind})"] = build.build_create(
            activity_id=f"{obj['id']}/activity",
            actor=ACTOR,
            obj=obj,
            published=NOW,
            context=proposal_context(),
        )
        activities[f"Update({kind})"] = build.build_update(
            activity_id=f"{BASE}/activities/up-{kind}",
            actor=ACTOR,
            obj=obj,
            updated=LATER,
            context=proposal_context(),
        )
    cancelled = agreements.build_agreement(
        agreement_id=AGREEMENT, owner=ACTOR, offer=offer(), status="cancelled"
    )
    activities |= {
        "Offer": offer(),
        "Offer(pledge)": pledge(),
        "Accept": agreements.build_accept_offer(
            activity_id=f"{BASE}/activities/a1",
            actor=ACTOR,
            offer=offer(),
            agreement=ACCEPTED_AGREEMENT,
        ),
        "Reject(offer)": agreements.build_reject(
            activity_id=f"{BASE}/activities/r1",
            actor=ACTOR,
            target=PEER,
            object_id=OFFER_ID,
            reason="Booked",
        ),
        "Reject(agreement)": agreements.build_reject(
            activity_id="https://other.example/activities/r2",
            actor=PEER,
            target=ACTOR,
            object_id=AGREEMENT,
        ),
        "Undo(offer)": agreements.build_withdraw(
            activity_id="https://other.example/activities/u1",
            actor=PEER,
            proposer=ACTOR,
            offer_id=OFFER_ID,
        ),
        "Update(agreement)": agreements.build_agreement_update(
            activity_id=f"{BASE}/activities/up1",
            actor=ACTOR,
            target=PEER,
            agreement=cancelled,
            updated=LATER,
        ),
        "Create(receipt)": agreements.build_receipt(
            activity_id=f"{BASE}/activities/c1",
            receipt_id=f"{BASE}/receipts/k1",
            actor=ACTOR,
            target=PEER,
            agreement=ACCEPTED_AGREEMENT,
            provider=ACTOR,
            receiver=PEER,
            action="deliverService",
            at=LATER,
        ),
    }
    return activities


ACCEPTED_AGREEMENT: dict[str, Any] = {
    "id": AGREEMENT,
    "type": "Agreement",
    "attributedTo": ACTOR,
    "agreementStatus": "accepted",
    "stipulates": commitment("primary", f"{PROPOSAL}#primary", "hour", "8"),
    "stipulatesReciprocal": commitment("reciprocal", f"{PROPOSAL}#reciprocal", "one", "284"),
}
