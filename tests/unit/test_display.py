"""How the market reads (federation.display): amounts with their unit and currency,
counted goods by their label, pledges, coops by name and handle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from federation.display import (
    clean_unit_label,
    coop_label,
    exchange_amount,
    format_amount,
    offer_text,
    plural,
    price_text,
    progress_text,
    proposal_facts,
    proposal_words,
    resource_name,
)
from federation.store import Exchange, Proposal
from outbox.errors import InvalidInput
from outbox.listings import record_of
from outbox.proposals import build_proposal, parse_proposal, validate_spec
from tests.support.golden import ACTOR, BASE, FOLLOWERS, NOW, TAGS

D = Decimal
SOON = datetime(2025, 7, 1, tzinfo=UTC)


def stored(raw: dict[str, object]) -> Proposal:
    """A proposal as the node stores it: validated, built, read back."""
    spec = validate_spec(raw, now=NOW)
    body = build_proposal(
        spec,
        object_id=f"{BASE}/proposals/p1",
        actor=ACTOR,
        followers=FOLLOWERS,
        published=NOW,
        updated=None,
        tag_url=TAGS,
    )
    read = parse_proposal(body)
    return record_of(
        read,
        uri=body["id"],
        local=False,
        attributed_to=ACTOR,
        body=body,
        published=NOW,
        updated=None,
    )


@pytest.mark.parametrize(
    ("value", "unit", "currency", "label", "text"),
    [
        (D(20), "one", None, "loaf", "20 loaves"),
        (D(1), "one", None, "loaf", "1 loaf"),
        (D(3), "one", None, "crate", "3 crates"),
        (D(12), "one", None, None, "12"),
        (D(500), "kilogram", None, None, "500 kg"),
        (D("2.5"), "hour", None, None, "2.50 h"),
        (D(3000), "one", "EUR", None, "€3,000"),
        (D(1000), "one", "CHF", None, "1,000 CHF"),
    ],
)
def test_an_amount_carries_its_unit_or_currency(
    value: Decimal, unit: str, currency: str | None, label: str | None, text: str
) -> None:
    assert format_amount(value, unit, currency, label) == text


def test_plurals_of_unit_labels() -> None:
    words = ["loaf", "crate", "box", "berry", "day", "egg box", "bunch", "person"]
    assert [plural(w) for w in words] == [
        "loaves",
        "crates",
        "boxes",
        "berries",
        "days",
        "egg boxes",
        "bunches",
        "people",
    ]


def test_a_unit_label_is_a_word_or_two_and_nothing_else() -> None:
    assert clean_unit_label("  Loaf ") == "loaf"
    assert clean_unit_label("egg box") == "egg box"
    for bad in ("", "20kg", "<b>loaf</b>", "x" * 31, 7, None, "a b c d"):
        assert clean_unit_label(bad) is None


def test_offers_read_as_amount_for_price() -> None:
    assert offer_text(D(20), "one", "loaf", D(60), "EUR") == "20 loaves for €60"
    assert offer_text(D(40), "hour", None, D(35), "EUR") == "40 h for €35 per h"
    assert offer_text(D(40), "hour", None, D(280), "EUR", total=True) == "40 h for €280"
    assert offer_text(D(500), "kilogram", None, None, "EUR") == "500 kg, price negotiable"
    assert price_text(None, "EUR", "one") == "negotiable"


def test_pledges_read_with_their_share() -> None:
    assert progress_text(D(1000), D(3000), "one", "EUR") == "€1,000 pledged of €3,000 (33%)"
    assert progress_text(D(5), D(4), "one", None, "volunteer") == (
        "5 volunteers pledged of 4 volunteers (100%)"
    )


def test_a_counted_offer_keeps_one_on_the_wire_and_its_label_beside() -> None:
    # Given an offer of 20 loaves for 60 euros
    raw = {"kind": "offer", "title": "Rye bread", "quantity": "20", "unit_label": "Loaf"}
    p = stored({**raw, "price": "60", "currency": "EUR"})
    # Then the wire says "one", with the label in the primary Intent
    primary = p.body["publishes"]
    assert primary["resourceQuantity"] == {"hasUnit": "one", "hasNumericalValue": "20"}
    assert primary["unitLabel"] == "loaf"
    # And every place reads it the same way
    assert proposal_words(p)["summary"] == "20 loaves for €60"
    assert proposal_facts(p, NOW) == ["Quantity: 20 loaves", "Price: €60"]
    assert "Quantity: 20 loaves" in p.body["content"]


def test_a_label_names_counted_goods_only() -> None:
    raw = {"kind": "offer", "title": "Flour", "quantity": "5", "unit": "kilogram"}
    with pytest.raises(InvalidInput) as caught:
        validate_spec({**raw, "unit_label": "sack"}, now=NOW)
    assert caught.value.field == "unit_label"
    with pytest.raises(InvalidInput) as caught:
        validate_spec({**raw, "unit": "one", "unit_label": "2 sacks"}, now=NOW)
    assert caught.value.field == "unit_label"


def test_a_peer_label_that_is_not_a_word_is_dropped() -> None:
    p = stored({"kind": "offer", "title": "Eggs", "quantity": "6", "unit_label": "egg"})
    body = {**p.body, "publishes": {**p.body["publishes"], "unitLabel": "<script>"}}
    assert parse_proposal(body).unit_label is None
    assert proposal_words(replace(p, body=body))["amount"] == "6"


def test_a_solidarity_request_reads_pledged_of_target() -> None:
    p = stored(
        {
            "kind": "solidarity",
            "title": "Oven repair",
            "quantity": "3000",
            "currency": "EUR",
            "deadline": SOON.isoformat(),
        }
    )
    p = replace(p, pledged=D(1000), received=D(250))
    words = proposal_words(p)
    assert words["summary"] == "€1,000 pledged of €3,000 (33%)"
    assert words["received"] == "€250 received"
    assert words["deadline"] == "2025-07-01 00:00 UTC"


def test_an_exchange_reads_amount_for_price() -> None:
    p = stored({"kind": "offer", "title": "Rye bread", "quantity": "20", "unit_label": "loaf"})
    e = Exchange(
        id=1,
        offer_id="https://b.example/a/1",
        proposal_uri=p.uri,
        proposer=ACTOR,
        responder="https://b.example/users/b",
        role="proposer",
        state="offered",
        pledge=False,
        quantity=D(20),
        unit="one",
        reciprocal_quantity=D(60),
        reciprocal_unit="one",
        message="",
        agreement_uri=None,
        offer={},
        agreement=None,
        receipt=None,
        created_at=NOW,
        updated_at=NOW,
    )
    assert exchange_amount(e, p) == "20 loaves for €60"
    assert exchange_amount(replace(e, reciprocal_quantity=None), p) == "20 loaves"
    assert exchange_amount(e, None) == "20 for €60"


def test_a_coop_is_named_by_name_and_handle() -> None:
    uri = "https://bakery.example/users/bakery"
    assert coop_label(uri, "Rye Bakery", "bakery@bakery.example") == (
        "Rye Bakery (@bakery@bakery.example)"
    )
    assert coop_label(uri, "", "bakery@bakery.example") == "@bakery@bakery.example"
    assert coop_label(uri, "Rye Bakery") == "Rye Bakery (bakery.example)"
    assert coop_label(uri) == "bakery.example"


def test_a_resource_reads_as_words() -> None:
    assert resource_name("https://w3id.org/coopfed/resource/rye-grain") == "rye grain"
    assert resource_name("flour") == "flour"
    assert resource_name(None) == ""
