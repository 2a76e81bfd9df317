"""Fixed ids, times and inputs that the golden tests of the proposal and exchange
builders share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from outbox.proposals import (
    ProposalSpec,
    build_proposal,
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
