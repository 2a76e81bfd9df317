"""The market as the admin reads it: queries shared by ``/api/*``, the CLI and the admin.

Each item is the JSON shape of ``outbox.c2s`` with the coop named the way
people know it (``coop_name``: "Rye Bakery (@bakery@bakery.example)", from what
the node knows of the actor) and its amounts in words (``display``).  Matches
come best first (``outbox.matching.rank_matches``), each with why it matched.
"""

from __future__ import annotations

from typing import Any

from federation.context import NodeContext
from federation.display import coop_label, is_closed
from federation.exchange import STATES
from federation.store import Proposal
from federation.vocab import KINDS
from outbox.c2s import exchange_json, match_json, proposal_json
from outbox.errors import InvalidInput
from outbox.matching import rank_matches

STATUSES = ("open", "closed")


class CoopNames:
    """Names of coops by actor URL, looked up once per view."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.known: dict[str, str] = {}

    async def of(self, uri: str) -> str:
        if uri not in self.known:
            self.known[uri] = await self._look_up(uri)
        return self.known[uri]

    async def _look_up(self, uri: str) -> str:
        urls = self.node.urls
        username = urls.local_username(uri) if urls.is_local(uri) else None
        if username:
            local = await self.node.store.get_local_actor(username)
            return coop_label(uri, local.name if local else None, f"{username}@{urls.domain}")
        remote = await self.node.store.get_remote_actor(uri)
        if remote is None:
            return coop_label(uri)
        return coop_label(uri, remote.name, remote.handle if remote.username else None)


async def coop_url(node: NodeContext, text: str) -> str | None:
    """An actor URL from a URL or a ``user@host`` handle the node knows; None if unknown."""
    if text.startswith(("http://", "https://")):
        return text
    user, _, host = text.lstrip("@").removeprefix("acct:").partition("@")
    if not user or not host:
        return None
    if host.lower() == node.urls.domain.lower():
        return node.urls.actor(user)
    found = await node.store.find_remote_actor_by_handle(user, host.lower())
    return found.uri if found else None


async def _named(names: CoopNames, p: Proposal, item: dict[str, Any]) -> dict[str, Any]:
    item["coop_name"] = await names.of(p.attributed_to)
    return item


async def market_view(
    node: NodeContext,
    *,
    kind: str | None = None,
    tag: str | None = None,
    text: str | None = None,
    coop: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The market, filtered; raises InvalidInput naming a bad filter."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}")
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 500:
        raise InvalidInput("limit", "must be between 1 and 500")
    coop_uri = None
    if coop:
        coop_uri = await coop_url(node, coop)
        if coop_uri is None:
            return []
    now = node.clock()
    rows = await node.store.search_proposals(
        kind=kind,
        tag=tag.lstrip("#").lower() if tag else None,
        text=text or None,
        coop=coop_uri,
        status=status,
        now=now,
        limit=limit,
    )
    names = CoopNames(node)
    return [await _named(names, p, proposal_json(p, now)) for p in rows]


async def matches_view(node: NodeContext) -> list[dict[str, Any]]:
    """Open peers' proposals that fit our open ones, best first, each with its reason
    and rank (``outbox.matching``)."""
    now = node.clock()
    pairs = []
    for m in await node.store.list_matches():
        ours = await node.store.get_proposal(m.our_proposal)
        theirs = await node.store.get_proposal(m.their_proposal)
        if ours is None or theirs is None or is_closed(ours, now) or is_closed(theirs, now):
            continue  # a closed proposal fits nothing any more
        pairs.append((ours, theirs, m))
    names = CoopNames(node)
    items = []
    for fit, ours, theirs, m in rank_matches(pairs):
        item = match_json(m, ours, theirs, now)
        item["reason"], item["rank"] = fit.reason, fit.rank
        await _named(names, ours, item["ours"])
        await _named(names, theirs, item["theirs"])
        items.append(item)
    return items


async def exchanges_view(node: NodeContext, state: str | None = None) -> list[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise InvalidInput("state", f"must be one of {', '.join(STATES)}")
    names = CoopNames(node)
    items = []
    for e in await node.store.list_exchanges(state=state):
        proposal = await node.store.get_proposal(e.proposal_uri)
        item = exchange_json(e, await node.store.exchange_events(e.id), proposal)
        item["counterparty_name"] = await names.of(item["counterparty"])
        items.append(item)
    return items
