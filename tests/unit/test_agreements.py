"""Golden tests of the exchange builders (outbox/agreements.py), and every activity
coopfed emits checked against the vocabulary and an independent parser.
"""

from __future__ import annotations

import copy

import pytest

from federation.jsonld import AS_CONTEXT, SECURITY_CONTEXT
from federation.vocab import coop_terms, proposal_context
from outbox import agreements, build
from tests.support.golden import (
    ACCEPTED_AGREEMENT,
    ACTOR,
    AGREEMENT,
    BASE,
    FUND,
    LATER,
    NOW,
    OFFER_ID,
    PEER,
    PROPOSAL,
    commitment,
    emitted,
    offer,
    pledge,
)
from tests.support.vocabcheck import (
    independent_parse,
    little_boxes_backend,
    terms_used,
    vocabulary_problems,
)

# -- the exchange builders ------------------------------------------------------------


def test_build_offer_with_a_reciprocal() -> None:
    assert offer() == {
        "@context": proposal_context(),
        "id": OFFER_ID,
        "type": "Offer",
        "actor": PEER,
        "to": [ACTOR],
        "inReplyTo": PROPOSAL,
        "object": {
            "type": "Agreement",
            "stipulates": {
                "type": "Commitment",
                "satisfies": f"{PROPOSAL}#primary",
                "resourceQuantity": {"hasUnit": "hour", "hasNumericalValue": "8"},
            },
            "stipulatesReciprocal": {
                "type": "Commitment",
                "satisfies": f"{PROPOSAL}#reciprocal",
                "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "284"},
            },
        },
        "content": "Next week?",
    }


def test_build_offer_of_a_pledge_has_no_reciprocal_and_no_content() -> None:
    assert pledge() == {
        "@context": proposal_context(),
        "id": "https://other.example/activities/of2",
        "type": "Offer",
        "actor": PEER,
        "to": [ACTOR],
        "inReplyTo": FUND,
        "object": {
            "type": "Agreement",
            "stipulates": {
                "type": "Commitment",
                "satisfies": f"{FUND}#primary",
                "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1000"},
            },
        },
    }


def test_build_agreement_accepted_and_cancelled() -> None:
    accepted = agreements.build_agreement(
        agreement_id=AGREEMENT, owner=ACTOR, offer=offer(), status="accepted"
    )
    assert accepted == ACCEPTED_AGREEMENT
    for status in ("cancelled", "completed"):
        closed = agreements.build_agreement(
            agreement_id=AGREEMENT, owner=ACTOR, offer=offer(), status=status
        )
        expected = copy.deepcopy(ACCEPTED_AGREEMENT) | {"agreementStatus": status}
        expected["stipulates"]["finished"] = True
        expected["stipulatesReciprocal"]["finished"] = True
        assert closed == expected
    # A pledge's agreement has one commitment.
    assert agreements.build_agreement(
        agreement_id=AGREEMENT, owner=ACTOR, offer=pledge(), status="accepted"
    ) == {
        "id": AGREEMENT,
        "type": "Agreement",
        "attributedTo": ACTOR,
        "agreementStatus": "accepted",
        "stipulates": commitment("primary", f"{FUND}#primary", "one", "1000"),
    }


def test_build_accept_offer() -> None:
    activity = agreements.build_accept_offer(
        activity_id=f"{BASE}/activities/a1",
        actor=ACTOR,
        offer=offer(),
        agreement=ACCEPTED_AGREEMENT,
    )
    assert activity == {
        "@context": proposal_context(),
        "id": f"{BASE}/activities/a1",
        "type": "Accept",
        "actor": ACTOR,
        "to": [PEER],
        "object": OFFER_ID,
        "result": ACCEPTED_AGREEMENT,
    }


def test_build_reject_with_and_without_a_reason() -> None:
    reject = agreements.build_reject(
        activity_id=f"{BASE}/activities/r1",
        actor=ACTOR,
        target=PEER,
        object_id=OFFER_ID,
        reason="Booked in July",
    )
    assert reject == {
        "@context": proposal_context(),
        "id": f"{BASE}/activities/r1",
        "type": "Reject",
        "actor": ACTOR,
        "to": [PEER],
        "object": OFFER_ID,
        "content": "Booked in July",
    }
    bare = agreements.build_reject(
        activity_id=f"{BASE}/activities/r1", actor=ACTOR, target=PEER, object_id=OFFER_ID
    )
    assert bare == {k: v for k, v in reject.items() if k != "content"}


def test_build_withdraw() -> None:
    assert agreements.build_withdraw(
        activity_id="https://other.example/activities/u1",
        actor=PEER,
        proposer=ACTOR,
        offer_id=OFFER_ID,
    ) == {
        "@context": proposal_context(),
        "id": "https://other.example/activities/u1",
        "type": "Undo",
        "actor": PEER,
        "to": [ACTOR],
        "object": OFFER_ID,
    }


def test_build_agreement_update() -> None:
    cancelled = agreements.build_agreement(
        agreement_id=AGREEMENT, owner=ACTOR, offer=offer(), status="cancelled"
    )
    assert agreements.build_agreement_update(
        activity_id=f"{BASE}/activities/up1",
        actor=ACTOR,
        target=PEER,
        agreement=cancelled,
        updated=LATER,
    ) == {
        "@context": proposal_context(),
        "id": f"{BASE}/activities/up1",
        "type": "Update",
        "actor": ACTOR,
        "to": [PEER],
        "object": cancelled | {"updated": "2025-06-02T10:30:15.123Z"},
    }


def test_build_receipt() -> None:
    receipt = agreements.build_receipt(
        activity_id=f"{BASE}/activities/c1",
        receipt_id=f"{BASE}/receipts/k1",
        actor=ACTOR,
        target=PEER,
        agreement=ACCEPTED_AGREEMENT,
        provider=ACTOR,
        receiver=PEER,
        action="deliverService",
        at=LATER,
    )
    assert receipt == {
        "@context": proposal_context(),
        "id": f"{BASE}/activities/c1",
        "type": "Create",
        "actor": ACTOR,
        "to": [PEER],
        "object": {
            "id": f"{BASE}/receipts/k1",
            "type": "Document",
            "name": "Receipt",
            "attributedTo": ACTOR,
            "context": AGREEMENT,
            "published": "2025-06-02T10:30:15Z",
            "to": [PEER],
            "attachment": [
                {
                    "type": "EconomicEvent",
                    "action": "deliverService",
                    "fulfills": f"{AGREEMENT}#primary",
                    "provider": ACTOR,
                    "receiver": PEER,
                    "hasPointInTime": "2025-06-02T10:30:15Z",
                    "resourceQuantity": {"hasUnit": "hour", "hasNumericalValue": "8"},
                },
                {
                    "type": "EconomicEvent",
                    "action": "transfer",
                    "fulfills": f"{AGREEMENT}#reciprocal",
                    "provider": PEER,
                    "receiver": ACTOR,
                    "hasPointInTime": "2025-06-02T10:30:15Z",
                    "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "284"},
                },
            ],
        },
    }


# -- every activity against the vocabulary and an independent parser --------------------


HOW_CHECKED = {
    "Create(offer)": "little-boxes: Create(Note)",
    "Create(need)": "little-boxes: Create(Note)",
    "Create(solidarity)": "little-boxes: Create(Note)",
    "Update(offer)": "little-boxes: Update(Note)",
    "Update(need)": "little-boxes: Update(Note)",
    "Update(solidarity)": "little-boxes: Update(Note)",
    "Offer": "structural: Offer(Agreement)",
    "Offer(pledge)": "structural: Offer(Agreement)",
    "Accept": "little-boxes: Accept",
    "Reject(offer)": "structural: Reject",
    "Reject(agreement)": "structural: Reject",
    "Undo(offer)": "little-boxes: Undo",
    "Update(agreement)": "structural: Update(Agreement)",
    "Create(receipt)": "structural: Create(Document)",
}


@pytest.mark.parametrize("name", list(HOW_CHECKED))
def test_every_activity_validates_against_the_vocabulary(name: str) -> None:
    activity = emitted()[name]
    assert vocabulary_problems(activity) == []
    context = activity["@context"]
    assert [c for c in context if isinstance(c, str)] == [AS_CONTEXT, SECURITY_CONTEXT]
    assert all(isinstance(c, dict) for c in context[2:])
    assert terms_used(activity) <= set(coop_terms())


@pytest.mark.parametrize("name", list(HOW_CHECKED))
def test_every_activity_parses_with_little_boxes_or_structurally(name: str) -> None:
    with little_boxes_backend([ACTOR, PEER]):
        assert independent_parse(emitted()[name]) == HOW_CHECKED[name]


def test_all_vocabulary_terms_in_use_are_defined() -> None:
    """Every vf:/coop: term our builders emit, collected across all activities."""
    used: set[str] = set()
    for activity in emitted().values():
        used |= terms_used(activity)
    assert used == {
        "Proposal", "Intent", "Agreement", "Commitment", "EconomicEvent", "purpose",
        "proposalKind", "publishes", "reciprocal", "unitBased", "action",
        "resourceConformsTo", "resourceQuantity", "availableQuantity", "hasUnit",
        "hasNumericalValue", "hasEnd", "due", "pledgedQuantity", "receivedQuantity",
        "agreementStatus", "stipulates", "stipulatesReciprocal", "satisfies", "finished",
        "fulfills", "provider", "receiver", "hasPointInTime",
    }  # fmt: skip
    assert used <= set(coop_terms())


def test_the_vocabulary_check_is_not_a_rubber_stamp() -> None:
    create = emitted()["Create(offer)"]
    bad = copy.deepcopy(create)
    bad["@context"].insert(2, "https://example.org/other-context")
    bad["object"]["publishes"]["availableQuantity"]["hasNumericalValue"] = "4E+1"
    bad["object"]["wanted"] = True
    bad["object"]["type"] = ["Note", "Listing"]
    assert vocabulary_problems(bad) == [
        "@context names other URLs: ['https://www.w3.org/ns/activitystreams', "
        "'https://w3id.org/security/v1', 'https://example.org/other-context']",
        "$.object.type Listing is not defined",
        "$.object.publishes.availableQuantity.hasNumericalValue '4E+1' is not a decimal string",
        "$.object.wanted is not defined",
    ]
    # A proposal in a plain (non-marketplace) context uses undefined terms.
    plain = build.build_create(
        activity_id=f"{BASE}/a", actor=ACTOR, obj=create["object"], published=NOW
    )
    assert "$.object.purpose is not defined" in vocabulary_problems(plain)
