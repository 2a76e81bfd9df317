"""Everything the node sends, expanded by pyld (a maintained JSON-LD processor),
read the way Fedify reads it: by IRI, never by compact key.

pyld's document loader serves the ActivityStreams and security contexts from
tests/fixtures/contexts/ (offline); any other context URL is an error.  Every
term of every outgoing activity must expand to an IRI (the AS context's
``"@vocab": "_:"`` turns an undefined term into a blank-node IRI, which fails
here), and each FEP-0837 field must expand to its exact IRI with the right kind
of value: an ``@id`` for references, a literal for amounts and units, a node for
intents, measures and commitments.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from pyld import jsonld

from actors.collections import build_outbox_page
from actors.local import build_actor, build_instance_actor, build_tombstone
from federation.jsonld import AS_CONTEXT, SECURITY_CONTEXT
from federation.keys import generate_private_key
from federation.urls import Urls
from federation.vocab import (
    CURRENCIES,
    OM2_NAMESPACE,
    RESOURCE_BASE,
    VF_NAMESPACE,
    proposal_context,
)
from outbox import build
from outbox.lifecycle import build_delete_actor
from outbox.proposals import validate_spec, with_progress
from tests.support.golden import (
    ACTOR,
    BASE,
    FOLLOWERS,
    LATER,
    NOW,
    OFFER_INPUT,
    PEER,
    SOLIDARITY_INPUT,
    emitted,
    proposal,
)
from tests.support.samples import coop_row, note, remote_follow, sample_activities

CONTEXTS = Path(__file__).parents[1] / "fixtures" / "contexts"
FILES = {AS_CONTEXT: "activitystreams.jsonld", SECURITY_CONTEXT: "security-v1.jsonld"}
AS = AS_CONTEXT + "#"
VF = VF_NAMESPACE
OM2 = OM2_NAMESPACE
EUR = CURRENCIES["EUR"]


def offline_loader(url: str, options: Any = None) -> dict[str, Any]:
    name = FILES.get(url.rstrip("#"))
    if name is None:
        raise AssertionError(f"a peer would have to fetch {url}: every other term is inline")
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": orjson.loads((CONTEXTS / name).read_bytes()),
    }


def expand(document: dict[str, Any]) -> dict[str, Any]:
    (expanded,) = jsonld.expand(copy.deepcopy(document), {"documentLoader": offline_loader})
    result: dict[str, Any] = expanded
    return result


# The kind of value each FEP-0837 (ValueFlows, OM 2.0) property must expand to.
IRI = "@id"
LITERAL = "@value"
NODE = "node"
FEP_FIELDS = {
    VF + "purpose": LITERAL,
    VF + "publishes": NODE,
    VF + "reciprocal": NODE,
    VF + "unitBased": LITERAL,
    VF + "action": LITERAL,
    VF + "resourceConformsTo": IRI,
    VF + "resourceQuantity": NODE,
    VF + "effortQuantity": NODE,
    VF + "availableQuantity": NODE,
    VF + "minimumQuantity": NODE,
    OM2 + "hasUnit": LITERAL,
    OM2 + "hasNumericalValue": LITERAL,
    VF + "hasEnd": LITERAL,
    VF + "due": LITERAL,
    VF + "finished": LITERAL,
    VF + "stipulates": NODE,
    VF + "stipulatesReciprocal": NODE,
    VF + "satisfies": IRI,
    VF + "fulfills": IRI,
    VF + "provider": IRI,
    VF + "receiver": IRI,
    VF + "hasPointInTime": LITERAL,
}


def _kind(value: dict[str, Any]) -> str:
    if "@value" in value:
        return LITERAL
    if set(value) == {"@id"}:
        return IRI
    return NODE


def walk(node: Any) -> list[tuple[str, Any]]:
    """Every (property IRI, expanded value) below ``node``."""
    found: list[tuple[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, values in item.items():
                if key.startswith("@") and key not in ("@list", "@set"):
                    continue
                for value in values if isinstance(values, list) else [values]:
                    found.append((key, value))
                    stack.append(value)
    return found


def problems(document: dict[str, Any]) -> list[str]:
    """Terms that expand to no IRI, and FEP-0837 fields with the wrong kind of value."""
    expanded = expand(document)
    found: list[str] = []
    for key, value in walk(expanded):
        if key.startswith("_:"):
            found.append(f"{key[2:]} is not defined by the context")
        want = FEP_FIELDS.get(key)
        if want is not None and isinstance(value, dict) and _kind(value) != want:
            found.append(f"{key} expands to {value!r}, not a {want}")
    types = [t for _, v in walk([expanded]) if isinstance(v, dict) for t in v.get("@type", [])]
    found += [f"type {t} is not defined" for t in types if t.startswith("_:")]
    return found


def values(expanded: Any, *path: str) -> list[Any]:
    """The expanded values at ``path`` (IRIs, or vf:/om2: names relative to VF/OM2)."""
    nodes = expanded if isinstance(expanded, list) else [expanded]
    for step in path:
        iri = step if "://" in step else (OM2 if step.startswith("has") else VF) + step
        nodes = [v for n in nodes if isinstance(n, dict) for v in n.get(iri, [])]
    return nodes


# -- every outgoing activity and document ------------------------------------------


def outgoing() -> dict[str, dict[str, Any]]:
    """One of everything the node sends: marketplace activities (test_proposals),
    follows, notes and reactions (test_build), progress, replies, deletes, actors."""
    urls = Urls(BASE)
    key = generate_private_key()
    coop = coop_row(key)
    solidarity = validate_spec(SOLIDARITY_INPUT, now=NOW)
    progress = proposal(
        with_progress(solidarity, pledged=Decimal(2100), received=Decimal(1500)),
        "s1",
        updated=LATER,
    )
    reply = note(
        in_reply_to=f"{PEER}/statuses/1",
        tags=[{"type": "Mention", "href": PEER, "name": "@bakery@other.example"}],
    )
    documents = {f"market {k}": v for k, v in emitted().items()}
    documents |= {f"social {k}": v for k, v in sample_activities().items()}
    documents |= {
        "market Update(progress)": build.build_update(
            activity_id=f"{BASE}/activities/progress",
            actor=ACTOR,
            obj=progress,
            updated=LATER + timedelta(seconds=1),
            context=emitted()["Create(solidarity)"]["@context"],
        ),
        "market Delete(offer)": build.build_delete(
            activity_id=f"{BASE}/activities/d2",
            actor=ACTOR,
            object_id=f"{BASE}/proposals/o1",
            to=["https://www.w3.org/ns/activitystreams#Public"],
            cc=[FOLLOWERS],
        ),
        "social Reject(Follow)": build.build_reject(
            activity_id=f"{BASE}/activities/rj1", actor=ACTOR, follow=remote_follow()
        ),
        "social Create(reply)": build.build_create(
            activity_id=f"{BASE}/objects/r1/activity", actor=ACTOR, obj=reply, published=NOW
        ),
        "social Delete(actor)": build_delete_actor(
            activity_id=f"{BASE}/activities/bye", actor=ACTOR, followers=FOLLOWERS
        ),
        "actor coop": build_actor(coop, urls),
        "actor member": build_actor(replace_kind(coop, "member", "alice"), urls),
        "actor instance": build_instance_actor(replace_kind(coop, "instance", "node"), urls),
        "actor tombstone": build_tombstone(coop, urls),
        "outbox page": build_outbox_page(
            f"{ACTOR}/outbox?page=1",
            f"{ACTOR}/outbox",
            [{k: v for k, v in emitted()["Create(offer)"].items() if k != "@context"}],
            next_id=None,
        ),
    }
    return documents


def replace_kind(row: Any, kind: str, username: str) -> Any:
    from dataclasses import replace

    return replace(row, kind=kind, username=username)


NAMES = sorted(outgoing())


@pytest.mark.parametrize("name", NAMES)
def test_everything_we_send_expands_to_known_iris(name: str) -> None:
    document = outgoing()[name]
    expanded = expand(document)
    # Then every term is defined (no blank-node IRI) and each FEP-0837 field has the
    # kind of value a JSON-LD reader expects
    assert problems(document) == []
    # And the activity keeps its id and type
    assert expanded["@id"] == document["id"]
    assert AS + str(document["type"]) in expanded["@type"] or document["type"] == "Tombstone"


def test_the_outgoing_set_covers_every_kind_of_activity() -> None:
    kinds = {name.split(" ", 1)[1] for name in NAMES}
    for expected in (
        "Create(offer)",
        "Create(need)",
        "Create(solidarity)",
        "Update(offer)",
        "Update(need)",
        "Update(solidarity)",
        "Update(progress)",
        "Delete(offer)",
        "Offer",
        "Offer(pledge)",
        "Accept",
        "Reject(offer)",
        "Reject(agreement)",
        "Undo(offer)",
        "Update(agreement)",
        "Create(receipt)",
        "Follow",
        "Accept",
        "Reject(Follow)",
        "Undo(Follow)",
        "Undo(Like)",
        "Undo(Announce)",
        "Create(Note)",
        "Create(reply)",
        "Update(Note)",
        "Delete",
        "Delete(actor)",
        "Announce",
        "Like",
        "coop",
        "member",
        "instance",
    ):
        assert expected in kinds


def test_an_offer_expands_to_fep_0837_iris_and_values() -> None:
    create = emitted()["Create(offer)"]
    expanded = expand(create)
    (obj,) = values(expanded, AS + "object")
    # The proposal is a Note and a vf:Proposal
    assert set(obj["@type"]) == {AS + "Note", VF + "Proposal"}
    assert values(obj, "purpose") == [{"@value": "offer"}]
    assert values(obj, "unitBased") == [{"@value": True}]
    # Its primary intent: one hour of bookkeeping, 40 hours available
    (primary,) = values(obj, "publishes")
    assert primary["@id"] == f"{BASE}/proposals/o1#primary"
    assert primary["@type"] == [VF + "Intent"]
    assert values(primary, "action") == [{"@value": "deliverService"}]
    assert values(primary, "resourceConformsTo") == [{"@id": RESOURCE_BASE + "bookkeeping"}]
    assert values(primary, "resourceQuantity", "hasUnit") == [{"@value": "hour"}]
    assert values(primary, "resourceQuantity", "hasNumericalValue") == [{"@value": "1"}]
    assert values(primary, "availableQuantity", "hasNumericalValue") == [{"@value": "40"}]
    # Its reciprocal: 35.50 EUR (a Wikidata item, as an IRI)
    (reciprocal,) = values(obj, "reciprocal")
    assert values(reciprocal, "action") == [{"@value": "transfer"}]
    assert values(reciprocal, "resourceConformsTo") == [{"@id": EUR}]
    assert values(reciprocal, "resourceQuantity", "hasUnit") == [{"@value": "one"}]
    assert values(reciprocal, "resourceQuantity", "hasNumericalValue") == [{"@value": "35.50"}]
    # And coopfed's own term keeps its namespace
    assert values(obj, "https://w3id.org/coopfed/ns#proposalKind") == [{"@value": "offer"}]
    assert OFFER_INPUT["price"] == "35.50"


def test_a_progress_update_expands_its_pledged_and_received_amounts() -> None:
    update = outgoing()["market Update(progress)"]
    (obj,) = values(expand(update), AS + "object")
    (primary,) = values(obj, "publishes")
    assert values(primary, "resourceConformsTo") == [{"@id": EUR}]
    assert values(primary, "resourceQuantity", "hasNumericalValue") == [{"@value": "5000"}]
    assert values(primary, "due") == [{"@value": "2025-07-15T23:59:59Z"}]
    coop = "https://w3id.org/coopfed/ns#"
    assert values(primary, coop + "pledgedQuantity", "hasNumericalValue") == [{"@value": "2100"}]
    assert values(primary, coop + "receivedQuantity", "hasNumericalValue") == [{"@value": "1500"}]


def test_a_counted_offer_keeps_one_and_its_label_expands_in_our_namespace() -> None:
    # Given an offer of 20 loaves (counted goods with a label)
    raw = {"kind": "offer", "title": "Rye bread", "quantity": "20", "unit_label": "loaf"}
    obj = proposal(validate_spec(raw, now=NOW), "bread")
    create = {"@context": proposal_context(), "type": "Create", "actor": ACTOR, "object": obj}
    # Then every term is defined, the unit stays om2 "one", the label is coop:unitLabel
    assert problems(create) == []
    (expanded,) = values(expand(create), AS + "object")
    (primary,) = values(expanded, "publishes")
    assert values(primary, "resourceQuantity", "hasUnit") == [{"@value": "one"}]
    assert values(primary, "https://w3id.org/coopfed/ns#unitLabel") == [{"@value": "loaf"}]


def test_offer_accept_and_receipt_expand_references_to_iris() -> None:
    market = emitted()
    proposal_uri = f"{BASE}/proposals/o1"
    # Offer(Agreement): the commitments satisfy the proposal's intents, by IRI
    (agreement,) = values(expand(market["Offer"]), AS + "object")
    assert agreement["@type"] == [VF + "Agreement"]
    assert values(agreement, "stipulates", "satisfies") == [{"@id": f"{proposal_uri}#primary"}]
    assert values(agreement, "stipulatesReciprocal", "satisfies") == [
        {"@id": f"{proposal_uri}#reciprocal"}
    ]
    assert values(agreement, "stipulates", "resourceQuantity", "hasNumericalValue") == [
        {"@value": "8"}
    ]
    # Accept: the result is the Agreement, with its commitments
    (result,) = values(expand(market["Accept"]), AS + "result")
    assert result["@type"] == [VF + "Agreement"]
    assert values(result, "stipulates", "satisfies") == [{"@id": f"{proposal_uri}#primary"}]
    # Receipt: economic events fulfil the commitments; provider and receiver are actors
    (receipt,) = values(expand(market["Create(receipt)"]), AS + "object")
    events = values(receipt, AS + "attachment")
    assert [e["@type"] for e in events] == [[VF + "EconomicEvent"]] * 2
    assert {v["@id"] for e in events for v in values(e, "fulfills")} == {
        f"{BASE}/agreements/g1#primary",
        f"{BASE}/agreements/g1#reciprocal",
    }
    assert {v["@id"] for e in events for v in values(e, "provider")} == {ACTOR, PEER}
    assert {v["@id"] for e in events for v in values(e, "receiver")} == {ACTOR, PEER}


def test_the_previous_context_fails_these_checks() -> None:
    # Given the context as it was before FEP-0837's IRIs (resourceConformsTo a plain
    # term, units and amounts in vf:)
    create = emitted()["Create(offer)"]
    old = copy.deepcopy(create)
    inline = old["@context"][2]
    inline["resourceConformsTo"] = "vf:resourceConformsTo"
    inline["hasUnit"] = "vf:hasUnit"
    inline["hasNumericalValue"] = "vf:hasNumericalValue"
    # Then the checks name what a JSON-LD reader would miss
    found = problems(old)
    assert any("resourceConformsTo expands to" in p for p in found)
    (obj,) = values(expand(old), AS + "object")
    (primary,) = values(obj, "publishes")
    assert values(primary, "resourceQuantity", "hasNumericalValue") == []
