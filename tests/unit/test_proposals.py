"""Golden tests of offers, needs and solidarity requests (outbox/proposals.py) and of
the exchange builders (outbox/agreements.py), against FEP-0837 and ValueFlows.

Every builder gets fixed ids and times and is compared with the exact JSON it
must produce.  The rendered ``content`` is parsed with ``html.parser`` to prove
it uses only tags Mastodon's sanitizer keeps.  Every activity is then checked
against the vocabulary (tests/support/vocabcheck.py: only the AS and security
contexts by URL, every vf:/coop: term defined by ``federation.vocab``) and
parsed by an independent implementation, little-boxes 0.1.0, where it can:
little-boxes rejects a list-valued ``type``, so the proposal is validated as a
copy typed ``"Note"`` (what Mastodon renders), and it has no Offer, Reject,
Agreement or Document types, so those activities are checked structurally.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from outbox.proposals import (
    InvalidInput,
    ProposalSpec,
    parse_proposal,
    render_content,
    validate_spec,
)
from tests.support.golden import (
    ACTOR,
    BASE,
    EUR,
    FOLLOWERS,
    LATER,
    NEED_INPUT,
    NOW,
    OFFER_INPUT,
    PUBLIC,
    SOLIDARITY_INPUT,
    TAGS,
    hashtag_links,
    hashtags,
    proposal,
)

# -- validation ----------------------------------------------------------------------


def test_validate_spec_normalises_an_offer() -> None:
    assert validate_spec(OFFER_INPUT, now=NOW) == ProposalSpec(
        kind="offer",
        title="Bookkeeping for coops",
        details="Monthly books.\nVAT returns too.\n\nAsk us.",
        action="deliverService",
        resource="https://w3id.org/coopfed/resource/bookkeeping",
        unit="hour",
        quantity=Decimal("40"),
        price=Decimal("35.50"),
        currency="EUR",
        # "#" stripped, lower-cased; the generic #CoopOffer is added by the builder.
        tags=("accounting", "services"),
    )


def test_validate_spec_defaults_a_need_and_a_solidarity_request() -> None:
    need = validate_spec(NEED_INPUT, now=NOW)
    assert (need.action, need.price, need.currency, need.tags) == (
        "transfer",
        None,
        "EUR",  # negotiable, in euros
        ("flour", "bakery"),
    )
    assert need.deadline == datetime(2025, 7, 1, tzinfo=UTC)
    fund = validate_spec(SOLIDARITY_INPUT, now=NOW)
    assert (fund.action, fund.unit, fund.quantity, fund.currency) == (
        "transfer",
        "one",
        Decimal(5000),
        "EUR",
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": None}, "title", "is required"),
        ({"title": "   "}, "title", "is required"),
        ({"title": "x" * 201}, "title", "is longer than 200 characters"),
        ({"kind": "gift"}, "kind", "must be one of offer, need, solidarity"),
        ({"quantity": "-1"}, "quantity", "must not be negative"),
        ({"quantity": "lots"}, "quantity", "must be a number"),
        ({"quantity": "NaN"}, "quantity", "must be a finite number"),
        ({"price": "-0.01"}, "price", "must not be negative"),
        ({"deadline": "2025-06-01T08:59:59Z"}, "deadline", "is in the past"),
        ({"deadline": "2025-06-01T09:00:00Z"}, "deadline", "is in the past"),
        ({"deadline": "2025-07-01T00:00:00"}, "deadline", "must include a time zone (e.g. Z)"),
        ({"deadline": "next week"}, "deadline", "must be an ISO 8601 date or time"),
        ({"currency": "EURO"}, "currency", "must be a three-letter code such as EUR"),
        ({"currency": "€"}, "currency", "must be a three-letter code such as EUR"),
        ({"currency": 978}, "currency", "must be a three-letter code such as EUR"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "must be a list of at most 10 words"),
        ({"tags": ["two words"]}, "tags", "'two words' is not a single word"),
        (
            {"action": "steal"},
            "action",
            "must be one of deliverService, transfer, transferCustody, use, work",
        ),
        ({"resource": " "}, "resource", "must be a word or a URL"),
    ],
)
def test_validate_spec_names_the_field(changes: dict[str, Any], field: str, message: str) -> None:
    raw = OFFER_INPUT | changes
    with pytest.raises(InvalidInput) as refused:
        validate_spec(raw, now=NOW)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert str(refused.value) == f"{field}: {message}"


def test_validate_spec_refuses_an_unknown_unit_and_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_spec(OFFER_INPUT | {"unit": "furlong"}, now=NOW)
    assert refused.value.field == "unit"
    assert refused.value.message.startswith("unknown unit 'furlong'; known: cubicMetre, day, ")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": None}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"deadline": None}, "deadline"),
    ],
)
def test_a_solidarity_request_needs_a_target_and_a_deadline(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_spec(SOLIDARITY_INPUT | changes, now=NOW)
    assert refused.value.field == field
    assert refused.value.message.startswith("a solidarity request needs a ")


# -- golden JSON ---------------------------------------------------------------------


def test_build_proposal_offer_with_a_price_per_unit() -> None:
    obj = proposal(validate_spec(OFFER_INPUT, now=NOW), "o1")
    assert obj == {
        "id": f"{BASE}/proposals/o1",
        "type": ["Note", "Proposal"],
        "purpose": "offer",
        "proposalKind": "offer",
        "attributedTo": ACTOR,
        "name": "Bookkeeping for coops",
        "content": (
            "<p><strong>OFFER:</strong> Bookkeeping for coops</p>"
            "<p>Monthly books.<br>VAT returns too.</p><p>Ask us.</p>"
            "<ul><li>Quantity: 40 h</li><li>Price: €35.50 per h</li></ul>"
            f"<p>{hashtag_links('CoopOffer', 'accounting', 'services')}</p>"
        ),
        "published": "2025-06-01T09:00:00Z",
        "url": f"{BASE}/proposals/o1",
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        "tag": hashtags("CoopOffer", "accounting", "services"),
        # unitBased: responses take multiples of one hour at the reciprocal price;
        # the 40 hours on offer are the available quantity (FEP-0837).
        "publishes": {
            "id": f"{BASE}/proposals/o1#primary",
            "type": "Intent",
            "action": "deliverService",
            "resourceConformsTo": "https://w3id.org/coopfed/resource/bookkeeping",
            "resourceQuantity": {"hasUnit": "hour", "hasNumericalValue": "1"},
            "availableQuantity": {"hasUnit": "hour", "hasNumericalValue": "40"},
        },
        "reciprocal": {
            "id": f"{BASE}/proposals/o1#reciprocal",
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": EUR,
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "35.50"},
        },
        "unitBased": True,
    }


def test_build_proposal_need_with_a_negotiable_price() -> None:
    obj = proposal(validate_spec(NEED_INPUT, now=NOW), "n1")
    assert obj == {
        "id": f"{BASE}/proposals/n1",
        "type": ["Note", "Proposal"],
        "purpose": "request",
        "proposalKind": "need",
        "attributedTo": ACTOR,
        "name": "Organic flour",
        "content": (
            "<p><strong>NEED:</strong> Organic flour</p>"
            "<ul><li>Quantity: 200 kg</li><li>Price: negotiable</li>"
            "<li>Deadline: 2025-07-01 00:00 UTC</li></ul>"
            f"<p>{hashtag_links('CoopNeed', 'flour', 'bakery')}</p>"
        ),
        "published": "2025-06-01T09:00:00Z",
        "url": f"{BASE}/proposals/n1",
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        "tag": hashtags("CoopNeed", "flour", "bakery"),
        "publishes": {
            "id": f"{BASE}/proposals/n1#primary",
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": "https://w3id.org/coopfed/resource/flour",
            "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "200"},
            "due": "2025-07-01T00:00:00Z",
        },
        "hasEnd": "2025-07-01T00:00:00Z",
        # Negotiable: a reciprocal in euros without hasNumericalValue.
        "reciprocal": {
            "id": f"{BASE}/proposals/n1#reciprocal",
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": EUR,
            "resourceQuantity": {"hasUnit": "one"},
        },
        "unitBased": False,
    }


def test_build_proposal_solidarity_request_with_progress() -> None:
    spec = replace(
        validate_spec(SOLIDARITY_INPUT, now=NOW), pledged=Decimal(2100), received=Decimal(1500)
    )
    obj = proposal(spec, "s1", updated=LATER)
    assert obj == {
        "id": f"{BASE}/proposals/s1",
        "type": ["Note", "Proposal"],
        "purpose": "request",
        "proposalKind": "solidarity",
        "attributedTo": ACTOR,
        "name": "Flood repair fund",
        "content": (
            "<p><strong>SOLIDARITY:</strong> Flood repair fund</p>"
            "<ul><li>Target: €5,000</li><li>Deadline: 2025-07-15 23:59 UTC</li>"
            "<li>Progress: €2,100 pledged of €5,000 (42%), €1,500 received</li></ul>"
            f"<p>{hashtag_links('MutualAid', 'flood')}</p>"
        ),
        "published": "2025-06-01T09:00:00Z",
        "updated": "2025-06-02T10:30:15.123Z",
        "url": f"{BASE}/proposals/s1",
        "to": [PUBLIC],
        "cc": [FOLLOWERS],
        "tag": hashtags("MutualAid", "flood"),
        "hasEnd": "2025-07-15T23:59:59Z",
        # No reciprocal: nothing is asked in return.
        "publishes": {
            "id": f"{BASE}/proposals/s1#primary",
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": EUR,
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "5000"},
            "due": "2025-07-15T23:59:59Z",
            "pledgedQuantity": {"hasUnit": "one", "hasNumericalValue": "2100"},
            "receivedQuantity": {"hasUnit": "one", "hasNumericalValue": "1500"},
        },
    }


def test_a_closed_proposal_says_so_and_is_finished() -> None:
    spec = replace(validate_spec(SOLIDARITY_INPUT, now=NOW), closed=True)
    obj = proposal(spec, "s1", updated=LATER)
    assert obj["publishes"]["finished"] is True
    assert obj["content"].startswith(
        "<p><strong>CLOSED · SOLIDARITY:</strong> Flood repair fund</p>"
    )


def test_measures_are_plain_decimal_strings() -> None:
    """Never exponent notation ("4E+1") for round numbers, nor for small fractions."""
    spec = validate_spec(
        OFFER_INPUT | {"unit": "one", "quantity": "1000000", "price": "0.0000001"}, now=NOW
    )
    obj = proposal(spec, "o2")
    assert obj["publishes"]["resourceQuantity"] == {
        "hasUnit": "one",
        "hasNumericalValue": "1000000",
    }
    assert obj["reciprocal"]["resourceQuantity"] == {
        "hasUnit": "one",
        "hasNumericalValue": "0.0000001",
    }
    assert obj["unitBased"] is False  # a price for the whole lot


# -- content a Mastodon reader sees ----------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs.extend(v or "" for k, v in attrs if k == "href")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


MASTODON_KEEPS = {"p", "br", "a", "strong", "em", "ul", "li", "span"}


@pytest.mark.parametrize("raw", [OFFER_INPUT, NEED_INPUT, SOLIDARITY_INPUT])
def test_render_content_uses_only_tags_mastodon_keeps(raw: dict[str, Any]) -> None:
    spec = validate_spec(
        raw | {"details": "Line one\nline two\n\n<script>x</script> & co"}, now=NOW
    )
    parser = _Tags()
    parser.feed(render_content(spec, tag_url=TAGS))
    assert parser.tags <= MASTODON_KEEPS, parser.tags - MASTODON_KEEPS
    assert {"p", "br", "strong", "ul", "li", "a", "span"} <= parser.tags
    assert all(h.startswith(TAGS) for h in parser.hrefs)
    # Details are text, never markup.
    assert "<script>x</script> & co" in "".join(parser.text)


def test_hashtags_are_kind_tags_plus_category_tags() -> None:
    kinds = {"offer": "CoopOffer", "need": "CoopNeed", "solidarity": "MutualAid"}
    for raw in (OFFER_INPUT, NEED_INPUT, SOLIDARITY_INPUT):
        spec = validate_spec(raw, now=NOW)
        obj = proposal(spec, "x")
        assert obj["tag"] == hashtags(kinds[spec.kind], *spec.tags)


# -- reading proposals back ------------------------------------------------------------


@pytest.mark.parametrize("raw", [OFFER_INPUT, NEED_INPUT, SOLIDARITY_INPUT])
def test_parse_proposal_round_trips_the_spec(raw: dict[str, Any]) -> None:
    spec = replace(validate_spec(raw, now=NOW), pledged=Decimal(7), received=Decimal(3))
    if spec.kind != "solidarity":
        spec = replace(spec, pledged=Decimal(0), received=Decimal(0))
    parsed = parse_proposal(proposal(spec, "rt", updated=LATER))
    # ``details`` is read back as the plain text of the whole ``content`` (for
    # search): the title, the details, the facts and the hashtags, one per line.
    lines = parsed.details.split("\n")
    details = [line for line in spec.details.split("\n") if line]
    assert lines[0] == f"{spec.kind.upper()}: {spec.title}"
    assert lines[1 : 1 + len(details)] == details
    assert replace(parsed, details=spec.details) == spec
    # A closed one reads back closed.
    closed = parse_proposal(proposal(replace(spec, closed=True), "rt", updated=LATER))
    assert closed.closed is True


def test_parse_proposal_reads_a_plain_fep_0837_proposal() -> None:
    """A Mitra-style proposal: type Proposal only, no coop: terms, no tags."""
    obj = {
        "type": "Proposal",
        "id": "https://market.example/proposals/1",
        "purpose": "offer",
        "attributedTo": "https://market.example/users/alice",
        "name": "Used bike",
        "content": "Blue one-speed bike",
        "publishes": {
            "type": "Intent",
            "id": "https://market.example/proposals/1#primary",
            "action": "transfer",
            "resourceConformsTo": "https://www.wikidata.org/wiki/Q11442",
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"},
        },
        "reciprocal": {
            "type": "Intent",
            "id": "https://market.example/proposals/1#reciprocal",
            "action": "transfer",
            "resourceConformsTo": "https://www.wikidata.org/wiki/Q4917",
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "30"},
        },
        "unitBased": False,
        "to": PUBLIC,
    }
    assert parse_proposal(obj) == ProposalSpec(
        kind="offer",
        title="Used bike",
        details="Blue one-speed bike",
        action="transfer",
        resource="https://www.wikidata.org/wiki/Q11442",
        unit="one",
        quantity=Decimal(1),
        price=Decimal(30),
        currency="USD",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"purpose": "gift", "proposalKind": None}, "purpose"),
        ({"publishes": None}, "publishes"),
        ({"name": ""}, "name"),
    ],
)
def test_parse_proposal_refuses_what_it_cannot_read(changes: dict[str, Any], field: str) -> None:
    obj = proposal(validate_spec(NEED_INPUT, now=NOW), "n1") | changes
    with pytest.raises(InvalidInput) as refused:
        parse_proposal(obj)
    assert refused.value.field == field
