"""The marketplace vocabulary: FEP-0837 proposals with ValueFlows terms.

Offers, needs and solidarity requests are ``["Note", "Proposal"]`` objects, so
Mastodon shows them as ordinary posts while coopfed peers read ``purpose``,
``publishes`` and the ``coop:`` extension terms.  Every term is defined inline
(``proposal_context``): no peer ever has to fetch a context document, though
the node serves one at its namespace IRI for humans and JSON-LD tools.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from federation.display import UNIT_ABBREVIATIONS
from federation.display import format_amount as format_amount
from federation.jsonld import build_context

VF_NAMESPACE = "https://w3id.org/valueflows/ont/vf#"
# Units and amounts are OM 2.0 terms, as in FEP-0837 and Fedify's ``Measure``.
OM2_NAMESPACE = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
# coopfed's own terms live in one project namespace, the same on every node.
COOP_NAMESPACE = "https://w3id.org/coopfed/ns#"
# Resource kinds named by a word ("flour") share one IRI space, so that an
# offer of flour on one node matches a need of flour on another.
RESOURCE_BASE = "https://w3id.org/coopfed/resource/"

KINDS = ("offer", "need", "solidarity")
PURPOSE_OF_KIND = {"offer": "offer", "need": "request", "solidarity": "request"}
KIND_TAGS = {"offer": "CoopOffer", "need": "CoopNeed", "solidarity": "MutualAid"}
GENERIC_TAGS = frozenset(t.lower() for t in KIND_TAGS.values())

# The largest amount a node keeps or accepts (PostgreSQL numeric overflows past
# ~1e131072, and every page prints the amount).
MAX_AMOUNT = Decimal("1e12")

# ValueFlows actions a proposal may publish.
ACTIONS = frozenset({"deliverService", "transfer", "work", "use", "transferCustody"})

# Units, by their OM2 names ("one" counts things: money, volunteers, pieces).
UNITS = frozenset(
    {
        "one",
        "hour",
        "day",
        "week",
        "month",
        "kilogram",
        "gram",
        "tonne",
        "litre",
        "metre",
        "squareMetre",
        "cubicMetre",
        "kilowattHour",
    }
)
UNIT_LABELS = UNIT_ABBREVIATIONS

# Currencies as resource specifications (Wikidata items), as FEP-0837 suggests.
CURRENCIES = {
    "EUR": "https://www.wikidata.org/wiki/Q4916",
    "USD": "https://www.wikidata.org/wiki/Q4917",
    "GBP": "https://www.wikidata.org/wiki/Q25224",
    "CHF": "https://www.wikidata.org/wiki/Q25344",
    "CAD": "https://www.wikidata.org/wiki/Q1104069",
    "SEK": "https://www.wikidata.org/wiki/Q122922",
}
CURRENCY_OF_URI = {uri: code for code, uri in CURRENCIES.items()}

VF_TERMS = (
    "Proposal",
    "Intent",
    "Agreement",
    "Commitment",
    "EconomicEvent",
    "purpose",
    "publishes",
    "reciprocal",
    "unitBased",
    "action",
    "resourceConformsTo",
    "resourceQuantity",
    "effortQuantity",
    "availableQuantity",
    "minimumQuantity",
    "hasEnd",
    "due",
    "finished",
    "stipulates",
    "stipulatesReciprocal",
    "satisfies",
    "fulfills",
    "provider",
    "receiver",
    "hasPointInTime",
)
OM2_TERMS = ("hasUnit", "hasNumericalValue")
# Terms whose value names another resource: coerced to an IRI (``@type: @id``), as
# Fedify's generated context does; a plain term would expand the IRI to a literal.
IRI_TERMS = frozenset({"resourceConformsTo", "satisfies", "fulfills", "provider", "receiver"})
# unitLabel: what one counted thing is called ("loaf"); hasUnit stays "one".
COOP_TERMS = (
    "proposalKind",
    "pledgedQuantity",
    "receivedQuantity",
    "agreementStatus",
    "unitLabel",
)


def coop_terms() -> dict[str, Any]:
    """Inline definitions of the ValueFlows, OM 2.0 and coopfed terms (compact keys
    unchanged: readers of compact JSON such as Mitra see the same keys)."""
    terms: dict[str, Any] = {"vf": VF_NAMESPACE, "om2": OM2_NAMESPACE, "coop": COOP_NAMESPACE}
    for t in VF_TERMS:
        terms[t] = {"@id": f"vf:{t}", "@type": "@id"} if t in IRI_TERMS else f"vf:{t}"
    terms.update({t: f"om2:{t}" for t in OM2_TERMS})
    terms.update({t: f"coop:{t}" for t in COOP_TERMS})
    return terms


def proposal_context() -> list[Any]:
    """The ``@context`` of every marketplace activity a node sends."""
    return build_context(coop_terms())


def namespace_document() -> dict[str, Any]:
    """The JSON-LD context document of the coopfed namespace (served at ``/ns``)."""
    return {"@context": coop_terms()}


def resource_uri(word_or_uri: str) -> str:
    """A resource kind: a URL stays as it is, a word becomes a shared IRI."""
    if word_or_uri.startswith(("http://", "https://", "urn:")):
        return word_or_uri
    slug = "-".join(word_or_uri.lower().split())
    return RESOURCE_BASE + slug


def currency_uri(code: str) -> str:
    code = code.upper()
    return CURRENCIES.get(code, f"urn:iso:std:iso:4217:{code}")


def currency_code(uri: str) -> str:
    if uri in CURRENCY_OF_URI:
        return CURRENCY_OF_URI[uri]
    return uri.rsplit(":", 1)[-1] if uri.startswith("urn:iso:std:iso:4217:") else ""


def measure(unit: str, value: Decimal | None) -> dict[str, Any]:
    """A ValueFlows ``Measure``; without ``value``, the unit alone."""
    built: dict[str, Any] = {"hasUnit": unit}
    if value is not None:
        # Plain decimal notation: str() of a normalized Decimal gives "4E+1".
        built["hasNumericalValue"] = format(
            value.normalize() if value == value.to_integral() else value, "f"
        )
    return built


def read_measure(document: Any) -> tuple[str | None, Decimal | None]:
    """(unit, value) of a peer's ``Measure``: a value in [0, MAX_AMOUNT], else None."""
    if not isinstance(document, dict):
        return None, None
    unit = document.get("hasUnit")
    try:
        value = (
            Decimal(str(document["hasNumericalValue"])) if "hasNumericalValue" in document else None
        )
    except InvalidOperation:
        value = None
    if value is not None and (not value.is_finite() or value < 0 or value > MAX_AMOUNT):
        value = None
    return (unit if isinstance(unit, str) else None), value
