"""Matching: a peer's offer that fits one of our needs, or a need that fits our offers.

``assess`` is pure: two proposals match when one offers and the other asks (a
need or a solidarity request), and they name the same resource or share a
category tag.  How well they match is its ``rank``:

0. the same resource ("same resource: rye grain");
1. shared tags, where at most one side names a resource ("shares the tag #rye");
2. shared tags while each names a different resource: a bread offer and a
   rye-grain need that both carry #rye ("only shares the tag #rye: theirs is
   bread, ours rye grain").

``rank_matches`` orders matches best first and leaves out a rank-2 match when
either of its proposals has a same-resource match: the bread offer is shown against
the rye-grain need only when nothing better exists, and then says so.
``record_matches`` stores the matches of one proposal against the other side
of the market, for ``coopfed matches``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from federation.context import NodeContext
from federation.display import resource_name
from federation.store import Proposal

SAME_RESOURCE, SHARED_TAGS, ONLY_TAGS = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Fit:
    rank: int
    reason: str


def complementary(a: str, b: str) -> bool:
    asks = {"need", "solidarity"}
    return (a == "offer" and b in asks) or (b == "offer" and a in asks)


def _tags(words: list[str]) -> str:
    noun = "tag" if len(words) == 1 else "tags"
    return f"{noun} " + ", ".join(f"#{t}" for t in words)


def assess(ours: Proposal, theirs: Proposal) -> Fit | None:
    """Whether and how well ``theirs`` fits ``ours``; None when it does not."""
    if not complementary(ours.kind, theirs.kind):
        return None
    shared = sorted(set(ours.tags) & set(theirs.tags))
    if ours.resource and ours.resource == theirs.resource:
        also = f" (and the {_tags(shared)})" if shared else ""
        return Fit(SAME_RESOURCE, f"same resource: {resource_name(ours.resource)}{also}")
    if not shared:
        return None
    if ours.resource and theirs.resource:
        return Fit(
            ONLY_TAGS,
            f"only shares the {_tags(shared)}: theirs is {resource_name(theirs.resource)}, "
            f"ours {resource_name(ours.resource)}",
        )
    return Fit(SHARED_TAGS, f"shares the {_tags(shared)}")


def match_reason(ours: Proposal, theirs: Proposal) -> str | None:
    fit = assess(ours, theirs)
    return fit.reason if fit else None


Item = TypeVar("Item")


def rank_matches(
    items: Sequence[tuple[Proposal, Proposal, Item]],
) -> list[tuple[Fit, Proposal, Proposal, Item]]:
    """(ours, theirs, anything) best first; items that no longer match are left out,
    and so is a pair that only shares a tag when either proposal has a match of the
    same resource."""
    fitted = [
        (fit, ours, theirs, item)
        for ours, theirs, item in items
        if (fit := assess(ours, theirs)) is not None
    ]
    best: dict[str, int] = {}
    for fit, ours, theirs, _ in fitted:
        for uri in (ours.uri, theirs.uri):
            best[uri] = min(best.get(uri, fit.rank), fit.rank)
    kept = [
        entry
        for entry in fitted
        if entry[0].rank < ONLY_TAGS
        or SAME_RESOURCE not in (best[entry[1].uri], best[entry[2].uri])
    ]
    return sorted(kept, key=lambda e: (e[0].rank, -e[2].published.timestamp()))


async def record_matches(node: NodeContext, proposal: Proposal) -> int:
    """Match a new or changed proposal against the other side; returns new matches."""
    if proposal.status != "open":
        return 0
    now = node.clock()
    others = await node.store.search_proposals(
        status="open", local=not proposal.local, now=now, limit=500
    )
    found = 0
    for other in others:
        ours, theirs = (proposal, other) if proposal.local else (other, proposal)
        reason = match_reason(ours, theirs)
        if reason and await node.store.add_match(ours.uri, theirs.uri, reason):
            found += 1
    return found
