"""Marketplace activities from peers: proposals, offers, and the exchange steps.

``inbox.dispatch`` routes here what concerns the market: a Create or Update of
a proposal (stored as a post, then read into the market), an Offer of an
Agreement, and the steps of an exchange.  Exchange steps go through the state
machine (``federation/exchange.py``): a step that the state or the sender does
not allow is refused, logged on the exchange, and never applied.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, NoReturn

from actors.remote import InvalidActor, fetch_actor
from federation.client import FetchError
from federation.context import NodeContext
from federation.exchange import IllegalTransition, next_state
from federation.jobs import JobHandler
from federation.jsonld import get_id, has_type, parse_time
from federation.origins import same_origin
from federation.shapes import as_iri, normalise
from federation.store import Exchange, InboxActivity, Job, LocalActor
from federation.vocab import read_measure
from inbox import content
from inbox.errors import Refused
from inbox.handling import PROPOSAL, Outcome, Subject, applied, ignored
from outbox import market
from outbox.errors import InvalidInput
from outbox.matching import record_matches
from outbox.proposals import is_proposal, parse_proposal

log = logging.getLogger(__name__)


def _quantity(commitment: Any) -> tuple[str | None, Decimal | None]:
    """(unit, quantity) a peer commits to: an exchange needs a positive quantity."""
    unit, value = (
        read_measure(commitment.get("resourceQuantity"))
        if isinstance(commitment, dict)
        else (None, None)
    )
    return (unit, value) if value is not None and value > 0 else (None, None)


def _exchange_of(subject: Subject) -> Exchange:
    assert subject.exchange is not None, "routed here only with the exchange it names"
    return subject.exchange


async def _local_owner(node: NodeContext, url: str) -> LocalActor | None:
    username = node.urls.local_username(url)
    return await node.store.get_local_actor(username) if username else None


async def _refuse(
    node: NodeContext, item: InboxActivity, exchange: Exchange, event: str, reason: str
) -> NoReturn:
    """Refuse a step by a party that may not take it: logged on the exchange, never applied."""
    await node.store.log_refused_event(
        exchange, event=event, by_actor=item.actor, activity_id=item.activity_id, reason=reason
    )
    raise Refused(reason)


async def _step(
    node: NodeContext, item: InboxActivity, exchange: Exchange, event: str, by: str, **changes: Any
) -> tuple[Outcome, Exchange | None]:
    """Apply one exchange step from a peer, or refuse and log it."""
    try:
        target = next_state(exchange.state, event, by)
    except IllegalTransition as exc:
        if (
            exchange.state
            == {
                "accept": "accepted",
                "reject": "rejected",
                "withdraw": "withdrawn",
                "cancel": "cancelled",
                "complete": "completed",
            }[event]
        ):
            return ignored(f"already {exchange.state}"), None
        await node.store.log_refused_event(
            exchange,
            event=event,
            by_actor=item.actor,
            activity_id=item.activity_id,
            reason=str(exc),
        )
        raise Refused(str(exc)) from exc
    moved = await node.store.move_exchange(
        exchange,
        event=event,
        to_state=target,
        by_actor=item.actor,
        activity_id=item.activity_id,
        **changes,
    )
    if moved is None:
        raise Refused("the exchange changed meanwhile")
    return applied(f"exchange {moved.id} {target}"), moved


# -- proposals and conversation ------------------------------------------------


async def _ingest(node: NodeContext, item: InboxActivity, obj: dict[str, Any]) -> Outcome:
    try:
        spec = parse_proposal(obj)
    except InvalidInput as exc:
        return ignored(f"stored as a post; not a readable proposal ({exc})")
    stored = await node.store.get_object(str(obj["id"]))
    if stored is None or stored.deleted_at is not None:
        return ignored("not stored")
    published = stored.published or node.clock()
    # The time of *this* object, not of the stored row: when two Updates are
    # handled at once the row may already hold the newer one, and pairing this
    # body with that time would let an older version win.
    updated = parse_time(obj.get("updated"))
    if updated is None and obj.get("updated") is not None:
        return ignored("unreadable updated time")
    record = market.record_of(
        spec,
        uri=stored.uri,
        local=False,
        attributed_to=item.actor,
        body=obj,
        published=published,
        updated=updated,
        status="closed" if spec.closed else "open",
    )
    outcome = await node.store.upsert_proposal(record)
    proposal = await node.store.get_proposal(stored.uri)
    matches = await record_matches(node, proposal) if proposal is not None else 0
    return applied(f"proposal {outcome}" + (f", {matches} match(es)" if matches else ""))


BACKFILL = "backfill_proposals"
BACKFILL_ITEMS = 50


def make_backfill_handler(node: NodeContext) -> JobHandler:
    """The ``backfill_proposals`` job, queued when a coop accepts our follow."""

    async def backfill(job: Job) -> None:
        outcome = await backfill_proposals(node, str(job.payload["actor"]))
        log.info("backfill from %s: %s", job.payload["actor"], outcome)

    return backfill


async def backfill_proposals(node: NodeContext, actor_uri: str) -> str:
    """Once a coop accepts our follow, read its outbox's first page so that its
    open offers, needs and solidarity requests reach our market at once (not only
    the ones it publishes from now on).  Each item goes through the same checks
    as a delivered activity; a failure here never undoes the follow."""
    try:
        remote = await fetch_actor(node, actor_uri)
        outbox_url = get_id(remote.document.get("outbox"))
        if not outbox_url or not same_origin(outbox_url, actor_uri):
            return "no outbox to read"
        signer = await node.instance_signer()
        collection = normalise(await node.client.fetch_json(outbox_url, signer=signer))
        # The first page, or the collection itself when it holds its items inline.
        page: Any = collection.get("first", collection)
        if isinstance(page, dict) and "orderedItems" not in page and "items" not in page:
            page = as_iri(page)  # a Link to the first page, not the page
        if isinstance(page, str) and same_origin(page, actor_uri):
            page = normalise(await node.client.fetch_json(page, signer=signer))
        items = None
        if isinstance(page, dict):
            items = page["orderedItems"] if "orderedItems" in page else page.get("items")
    except (FetchError, InvalidActor) as exc:
        return f"outbox not read ({exc})"
    if not isinstance(items, list):
        return "outbox not read (no items)"
    fetched = 0
    for activity in reversed(items[:BACKFILL_ITEMS]):  # oldest first: Create before Update
        activity = normalise(activity)
        if not isinstance(activity, dict) or get_id(activity.get("actor")) != actor_uri:
            continue
        inner = activity.get("object")
        kind = activity.get("type")
        if kind not in ("Create", "Update") or not is_proposal(inner):
            continue
        activity_id = get_id(activity) or ""
        if not activity_id or not same_origin(activity_id, actor_uri):
            continue
        synthetic = InboxActivity(
            id=0,
            activity_id=activity_id,
            actor=actor_uri,
            type=kind,
            body=activity,
            local_actor_id=None,
        )
        handler = handle_create_proposal if kind == "Create" else handle_update_proposal
        try:
            outcome = await handler(node, synthetic, Subject(PROPOSAL))
        except Refused:
            continue
        fetched += outcome.applied
    return f"{fetched} proposal(s) read from the outbox"


async def handle_create_proposal(
    node: NodeContext, item: InboxActivity, subject: Subject
) -> Outcome:
    """A Create of a proposal: stored as a post, then read into the market."""
    outcome = await content.handle_create(node, item, subject)
    return await _ingest(node, item, item.body["object"]) if outcome.applied else outcome


async def handle_update_proposal(
    node: NodeContext, item: InboxActivity, subject: Subject
) -> Outcome:
    outcome = await content.handle_update(node, item, subject)
    return await _ingest(node, item, item.body["object"]) if outcome.applied else outcome


# -- the exchange --------------------------------------------------------------


async def handle_offer(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """An Offer of an Agreement: a peer answers one of our proposals."""
    agreement = item.body.get("object")
    if not isinstance(agreement, dict) or not has_type(agreement, "Agreement"):
        return ignored("Offer of something else than an Agreement")
    stipulates = agreement.get("stipulates")
    satisfies = get_id(stipulates.get("satisfies")) if isinstance(stipulates, dict) else None
    proposal_uri = (satisfies or "").split("#")[0] or get_id(item.body.get("inReplyTo"))
    if not proposal_uri or not node.urls.is_local(proposal_uri):
        return ignored("not an answer to one of our proposals")
    proposal = await node.store.get_proposal(proposal_uri)
    owner = await _local_owner(node, proposal.attributed_to) if proposal else None
    if proposal is None or owner is None:
        raise Refused("no such proposal")
    if proposal.status != "open" or (proposal.deadline and proposal.deadline < node.clock()):
        raise Refused("the proposal is closed")
    unit, quantity = _quantity(stipulates)
    if quantity is None:
        raise Refused("the offer has no positive quantity")
    pledge = proposal.kind == "solidarity"
    rules = await market.rules(node)
    if pledge and rules["cap_pledges"] and proposal.quantity is not None:
        remaining = proposal.quantity - proposal.pledged
        if remaining <= 0:
            raise Refused("the solidarity request's target is already reached")
        quantity = min(quantity, remaining)  # one pledge counts at most what is missing
    _, reciprocal = _quantity(agreement.get("stipulatesReciprocal"))
    message = item.body.get("content")
    exchange = await node.store.create_exchange(
        offer_id=item.activity_id,
        proposal_uri=proposal.uri,
        proposer=proposal.attributed_to,
        responder=item.actor,
        role="proposer",
        state="offered",
        pledge=pledge,
        quantity=quantity,
        unit=unit or proposal.unit,
        reciprocal_quantity=None if pledge else reciprocal,
        reciprocal_unit=None if pledge or reciprocal is None else "one",
        message=message[:2000] if isinstance(message, str) else "",
        offer=item.body,
    )
    if exchange is None:
        return ignored("offer already recorded")
    if await _auto_accepted(node, owner, item.actor, pledge=pledge, rules=rules):
        await market.accept(node, owner, exchange.id)
        return applied(f"exchange {exchange.id} offered and accepted by rule")
    return applied(f"exchange {exchange.id} offered")


async def _auto_accepted(
    node: NodeContext, owner: LocalActor, sender: str, *, pledge: bool, rules: dict[str, bool]
) -> bool:
    """Whether the coop's rules accept this offer without a person deciding.

    A pledge is accepted by rule only from an actor the coop follows (unless the
    ``auto_accept_pledges_from_anyone`` rule is on): anyone else waits for a decision.
    """
    if not pledge:
        return rules["auto_accept_offers"]
    if not rules["auto_accept_pledges"]:
        return False
    if rules["auto_accept_pledges_from_anyone"]:
        return True
    followed = await node.store.get_follow(owner.id, sender, "outbound")
    return followed is not None and followed.state == "accepted"


async def handle_accept(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """The proposer accepts our Offer: the Agreement comes with it."""
    exchange = _exchange_of(subject)
    if exchange.role != "responder" or item.actor != exchange.proposer:
        await _refuse(node, item, exchange, "accept", "only the proposer may accept this offer")
    result = item.body.get("result")
    agreement_uri = get_id(result)
    if (
        not isinstance(result, dict)
        or not agreement_uri
        or not same_origin(agreement_uri, item.actor)
    ):
        await _refuse(
            node, item, exchange, "accept", "an Accept needs the Agreement, on the proposer's host"
        )
    outcome, _ = await _step(
        node, item, exchange, "accept", "proposer", agreement=result, agreement_uri=agreement_uri
    )
    return outcome


async def handle_reject(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """The proposer rejects our Offer."""
    exchange = _exchange_of(subject)
    if exchange.role != "responder" or item.actor != exchange.proposer:
        await _refuse(node, item, exchange, "reject", "only the proposer may reject this offer")
    outcome, _ = await _step(node, item, exchange, "reject", "proposer")
    return outcome


async def handle_cancel(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """A Reject of the agreement: the responder calls an accepted exchange off."""
    exchange = _exchange_of(subject)
    if exchange.role != "proposer" or item.actor != exchange.responder:
        await _refuse(
            node, item, exchange, "cancel", "only the responder may call this agreement off"
        )
    outcome, moved = await _step(
        node, item, exchange, "cancel", "responder", agreement=market.cancelled_agreement(exchange)
    )
    owner = await _local_owner(node, exchange.proposer)
    if moved is not None and owner is not None:
        await market.send_cancellation(node, owner, moved)
    return outcome


async def handle_withdraw(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """An Undo of the responder's Offer, before the proposer answered it."""
    exchange = _exchange_of(subject)
    if exchange.role != "proposer" or item.actor != exchange.responder:
        await _refuse(node, item, exchange, "withdraw", "only the responder may withdraw its offer")
    outcome, _ = await _step(node, item, exchange, "withdraw", "responder")
    return outcome


async def handle_agreement_update(
    node: NodeContext, item: InboxActivity, subject: Subject
) -> Outcome:
    """The proposer cancels or completes the agreement."""
    agreement = item.body["object"]
    agreement_uri = get_id(agreement)
    exchange = (
        await node.store.find_exchange(agreement_uri=agreement_uri) if agreement_uri else None
    )
    if exchange is None:
        return ignored("unknown agreement")
    status = agreement.get("agreementStatus")
    event = {"cancelled": "cancel", "completed": "complete"}.get(str(status))
    if exchange.role != "responder" or item.actor != exchange.proposer:
        await _refuse(
            node, item, exchange, event or "update", "only the agreement's owner may update it"
        )
    if event is None:
        return ignored(f"agreement status {status!r}")
    # Stored as the owner stores it (without the Update's time): both records agree.
    stored = {k: v for k, v in agreement.items() if k != "updated"}
    outcome, _ = await _step(node, item, exchange, event, "proposer", agreement=stored)
    return outcome


async def handle_receipt(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """The proposer's receipt: the exchange is completed."""
    receipt = item.body["object"]
    agreement_uri = get_id(receipt.get("context"))
    exchange = (
        await node.store.find_exchange(agreement_uri=agreement_uri) if agreement_uri else None
    )
    if exchange is None:
        return ignored("receipt of an unknown agreement")
    if exchange.role != "responder" or item.actor != exchange.proposer:
        await _refuse(node, item, exchange, "complete", "only the agreement's owner may confirm it")
    outcome, _ = await _step(node, item, exchange, "complete", "proposer", receipt=receipt)
    return outcome
