"""Matching: a peer's offer that fits one of our needs, or a need that fits our offers.

``match_reason`` is pure: two proposals match when one offers and the other
asks (a need or a solidarity request), and they name the same resource or
share a category tag.  ``record_matches`` stores the matches of one proposal
against the other side of the market, for ``coopfed matches``.
"""

from __future__ import annotations

from federation.context import NodeContext
from federation.store import Proposal


def complementary(a: str, b: str) -> bool:
    asks = {"need", "solidarity"}
    return (a == "offer" and b in asks) or (b == "offer" and a in asks)


def match_reason(ours: Proposal, theirs: Proposal) -> str | None:
    if not complementary(ours.kind, theirs.kind):
        return None
    if ours.resource and ours.resource == theirs.resource:
        return f"same resource {ours.resource}"
    shared = sorted(set(ours.tags) & set(theirs.tags))
    if shared:
        return "shared tags: " + ", ".join(f"#{t}" for t in shared)
    return None


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
