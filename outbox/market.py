"""What a coop does in the marketplace: publish proposals, respond, and run exchanges.

The CLI, the C2S API, the inbox's automatic rules and (later) the admin pages
call these functions; each checks the exchange state machine before anything
is stored or sent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from federation.context import NodeContext
from federation.exchange import IllegalTransition, next_state
from federation.jobs import JobHandler
from federation.store import Exchange, Job, LocalActor, Proposal
from federation.vocab import proposal_context
from outbox import agreements
from outbox.build import build_update
from outbox.errors import ActionError, InvalidInput
from outbox.fanout import send_activity
from outbox.matching import record_matches
from outbox.proposals import ProposalSpec, build_proposal, validate_spec
from outbox.publish import delete_post, publish_object, update_object

log = logging.getLogger(__name__)

CLOSE_PROPOSAL = "close_proposal"
# auto_accept_pledges: pledges from coops we follow are accepted without a decision;
# auto_accept_pledges_from_anyone: ... and from anyone else too (off: they wait);
# cap_pledges: one pledge counts at most what is still missing of the target.
RULE_DEFAULTS: dict[str, bool] = {
    "auto_accept_pledges": True,
    "auto_accept_pledges_from_anyone": False,
    "cap_pledges": True,
    "auto_accept_offers": False,
}


def spec_of(p: Proposal) -> ProposalSpec:
    """The spec of a stored proposal (for rebuilding its object)."""
    return ProposalSpec(
        kind=p.kind,
        title=p.title,
        details=p.details,
        action=p.action,
        resource=p.resource,
        unit=p.unit or "one",
        quantity=p.quantity,
        price=p.price,
        currency=p.currency,
        tags=tuple(p.tags),
        deadline=p.deadline,
        pledged=p.pledged,
        received=p.received,
        closed=p.status != "open",
    )


def record_of(
    spec: ProposalSpec,
    *,
    uri: str,
    local: bool,
    attributed_to: str,
    body: dict[str, Any],
    published: datetime,
    updated: datetime | None,
    status: str = "open",
) -> Proposal:
    return Proposal(
        seq=0,
        uri=uri,
        local=local,
        attributed_to=attributed_to,
        kind=spec.kind,
        title=spec.title,
        details=spec.details,
        action=spec.action,
        resource=spec.resource,
        unit=spec.unit,
        quantity=spec.quantity,
        price=spec.price,
        currency=spec.currency,
        tags=list(spec.tags),
        deadline=spec.deadline,
        pledged=spec.pledged,
        received=spec.received,
        status=status,
        body=body,
        published=published,
        updated=updated,
    )


async def _own_proposal(node: NodeContext, actor: LocalActor, uri: str) -> Proposal:
    proposal = await node.store.get_proposal(uri)
    if (
        proposal is None
        or not proposal.local
        or proposal.attributed_to != node.urls.actor(actor.username)
    ):
        raise ActionError("not_found", f"no proposal of ours at {uri}")
    if proposal.status == "deleted":
        raise ActionError("deleted", f"{uri} was deleted")
    return proposal


# -- proposals ---------------------------------------------------------------


async def publish_proposal(
    node: NodeContext, actor: LocalActor, raw: dict[str, Any]
) -> dict[str, Any]:
    """Validate and publish an offer, need or solidarity request; returns the Create."""
    spec = validate_spec(raw, now=node.clock())
    now = node.clock()
    uri = node.urls.proposal(node.new_token())
    actor_url = node.urls.actor(actor.username)
    obj = build_proposal(
        spec,
        object_id=uri,
        actor=actor_url,
        followers=node.urls.followers(actor.username),
        published=now,
        updated=None,
        tag_url=node.urls.tag_base,
    )
    await node.store.upsert_proposal(
        record_of(
            spec,
            uri=uri,
            local=True,
            attributed_to=actor_url,
            body=obj,
            published=now,
            updated=None,
        )
    )
    if spec.deadline is not None:
        await node.store.enqueue(CLOSE_PROPOSAL, {"uri": uri}, max_attempts=5, run_at=spec.deadline)
    create = await publish_object(node, actor, obj, context=proposal_context())
    stored = await node.store.get_proposal(uri)
    if stored is not None:
        await record_matches(node, stored)
    return create


async def _republish(node: NodeContext, actor: LocalActor, version: Proposal) -> dict[str, Any]:
    """Rebuild the object of a stored version and send it as an Update of that time.

    Versions (``add_pledge``, ``revise_proposal``) get strictly newer times in
    the order they are written.  When pledges or edits come at once, a version
    already superseded is not sent: the newer one carries its change too, and
    the last version written is the one stored and sent last.
    """
    assert version.updated is not None
    actor_url = node.urls.actor(actor.username)
    obj = build_proposal(
        spec_of(version),
        object_id=version.uri,
        actor=actor_url,
        followers=node.urls.followers(actor.username),
        published=version.published,
        updated=version.updated,
        tag_url=node.urls.tag_base,
    )
    if await node.store.set_proposal_body(version.uri, obj, version.updated):
        try:
            return await update_object(
                node, actor, obj, context=proposal_context(), updated=version.updated
            )
        except ActionError as exc:
            if exc.reason != "not_updatable":
                raise
    return build_update(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        obj=obj,
        updated=version.updated,
        context=proposal_context(),
    )


async def update_proposal(
    node: NodeContext, actor: LocalActor, uri: str, changes: dict[str, Any]
) -> dict[str, Any]:
    proposal = await _own_proposal(node, actor, uri)
    if proposal.status != "open":
        raise ActionError("closed", f"{uri} is closed")
    current = spec_of(proposal)
    raw: dict[str, Any] = {
        "kind": current.kind,
        "title": current.title,
        "details": current.details,
        "action": current.action,
        "resource": current.resource,
        "unit": current.unit,
        "quantity": current.quantity,
        "price": current.price,
        "currency": current.currency,
        "tags": list(current.tags),
        "deadline": current.deadline,
    }
    if "kind" in changes and changes["kind"] != current.kind:
        raise InvalidInput("kind", "cannot change; publish a new proposal instead")
    raw.update({k: v for k, v in changes.items() if k in raw})
    spec = validate_spec(raw, now=node.clock())
    version = await node.store.revise_proposal(
        record_of(
            spec,
            uri=uri,
            local=True,
            attributed_to=proposal.attributed_to,
            body=proposal.body,
            published=proposal.published,
            updated=None,
        )
    )
    if version is None:
        raise ActionError("closed", f"{uri} is closed")
    if spec.deadline is not None and spec.deadline != current.deadline:
        # The job of the old deadline finds it moved and does nothing.
        await node.store.enqueue(CLOSE_PROPOSAL, {"uri": uri}, max_attempts=5, run_at=spec.deadline)
    return await _republish(node, actor, version)


async def close_proposal(node: NodeContext, actor: LocalActor, uri: str) -> dict[str, Any]:
    proposal = await _own_proposal(node, actor, uri)
    if proposal.status != "open":
        raise ActionError("closed", f"{uri} is already closed")
    version = await node.store.revise_proposal(replace(proposal, status="closed"))
    if version is None:
        raise ActionError("closed", f"{uri} is already closed")
    return await _republish(node, actor, version)


async def delete_proposal(node: NodeContext, actor: LocalActor, uri: str) -> dict[str, Any]:
    proposal = await _own_proposal(node, actor, uri)
    await node.store.set_proposal_status(proposal.uri, "deleted", None, node.clock())
    return await delete_post(node, actor, uri)


async def refresh_progress(
    node: NodeContext, actor: LocalActor, uri: str, *, pledged: Decimal, received: Decimal
) -> Proposal | None:
    """Record pledged/received amounts and federate the updated post."""
    version = await node.store.add_pledge(uri, pledged=pledged, received=received)
    if version is None:
        return None
    await _republish(node, actor, version)
    return version


def make_close_handler(node: NodeContext) -> JobHandler:
    """The ``close_proposal`` job: at its deadline a proposal closes by itself."""

    async def close_due(job: Job) -> None:
        proposal = await node.store.get_proposal(str(job.payload["uri"]))
        if proposal is None or proposal.status != "open" or not proposal.local:
            return
        if proposal.deadline is None or proposal.deadline > node.clock():
            return  # the deadline moved; its own job will come
        username = node.urls.local_username(proposal.attributed_to)
        actor = await node.store.get_local_actor(username) if username else None
        if actor is not None:
            await close_proposal(node, actor, proposal.uri)

    return close_due


# -- exchanges ---------------------------------------------------------------


def _step(exchange: Exchange, event: str, by: str) -> str:
    try:
        return next_state(exchange.state, event, by)
    except IllegalTransition as exc:
        raise ActionError("illegal_transition", str(exc)) from exc


async def _exchange(node: NodeContext, exchange_id: int) -> Exchange:
    exchange = await node.store.get_exchange(exchange_id)
    if exchange is None:
        raise ActionError("not_found", f"no exchange {exchange_id}")
    return exchange


async def _moved(node: NodeContext, exchange: Exchange, **kwargs: Any) -> Exchange:
    moved = await node.store.move_exchange(exchange, **kwargs)
    if moved is None:
        raise ActionError("conflict", f"exchange {exchange.id} changed meanwhile; try again")
    return moved


async def respond(
    node: NodeContext,
    actor: LocalActor,
    proposal_uri: str,
    *,
    quantity: Decimal,
    reciprocal: Decimal | None = None,
    message: str = "",
) -> Exchange:
    """Answer a peer's offer, need or solidarity request with Offer(Agreement)."""
    proposal = await node.store.get_proposal(proposal_uri)
    if proposal is not None and proposal.local:
        raise ActionError(
            "own_proposal",
            f"{proposal_uri} is our own proposal: peers answer it, and we see their "
            "answers in `coopfed exchanges`",
        )
    if proposal is None:
        raise ActionError(
            "unknown_proposal",
            f"{proposal_uri} is not a peer's proposal we know: follow its coop first "
            "(`coopfed follow user@host`), then see it in `coopfed market`",
        )
    if proposal.status != "open" or (proposal.deadline and proposal.deadline < node.clock()):
        raise ActionError("closed", f"{proposal_uri} is closed")
    if quantity <= 0:
        raise InvalidInput("quantity", "must be above 0")
    if reciprocal is not None and reciprocal < 0:
        raise InvalidInput("price", "must not be negative")
    pledge = proposal.kind == "solidarity"
    offer_id = node.urls.activity(node.new_token())
    actor_url = node.urls.actor(actor.username)
    offer = agreements.build_offer(
        activity_id=offer_id,
        actor=actor_url,
        proposer=proposal.attributed_to,
        proposal_id=proposal.uri,
        unit=proposal.unit or "one",
        quantity=quantity,
        reciprocal=None if pledge else reciprocal,
        message=message,
    )
    exchange = await node.store.create_exchange(
        offer_id=offer_id,
        proposal_uri=proposal.uri,
        proposer=proposal.attributed_to,
        responder=actor_url,
        role="responder",
        state="offered",
        pledge=pledge,
        quantity=quantity,
        unit=proposal.unit or "one",
        reciprocal_quantity=None if pledge else reciprocal,
        reciprocal_unit=None if pledge or reciprocal is None else "one",
        message=message,
        offer=offer,
    )
    assert exchange is not None
    await send_activity(node, actor, offer)
    return exchange


async def accept(node: NodeContext, actor: LocalActor, exchange_id: int) -> Exchange:
    exchange = await _exchange(node, exchange_id)
    if exchange.role != "proposer":
        raise ActionError("not_ours", "only the coop that published the proposal can accept")
    target = _step(exchange, "accept", "proposer")
    actor_url = node.urls.actor(actor.username)
    agreement = agreements.build_agreement(
        agreement_id=node.urls.agreement(node.new_token()),
        owner=actor_url,
        offer=exchange.offer,
        status="accepted",
    )
    activity = agreements.build_accept_offer(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        offer=exchange.offer,
        agreement=agreement,
    )
    moved = await _moved(
        node,
        exchange,
        event="accept",
        to_state=target,
        by_actor=actor_url,
        activity_id=activity["id"],
        agreement=agreement,
        agreement_uri=agreement["id"],
    )
    await send_activity(node, actor, activity)
    if moved.pledge and moved.quantity:
        await refresh_progress(
            node, actor, moved.proposal_uri, pledged=moved.quantity, received=Decimal(0)
        )
    return moved


async def reject(
    node: NodeContext, actor: LocalActor, exchange_id: int, reason: str = ""
) -> Exchange:
    exchange = await _exchange(node, exchange_id)
    if exchange.role != "proposer":
        raise ActionError("not_ours", "only the coop that published the proposal can reject")
    target = _step(exchange, "reject", "proposer")
    actor_url = node.urls.actor(actor.username)
    activity = agreements.build_reject(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        target=exchange.responder,
        object_id=exchange.offer_id,
        reason=reason,
    )
    moved = await _moved(
        node,
        exchange,
        event="reject",
        to_state=target,
        by_actor=actor_url,
        activity_id=activity["id"],
    )
    await send_activity(node, actor, activity)
    return moved


async def withdraw(node: NodeContext, actor: LocalActor, exchange_id: int) -> Exchange:
    exchange = await _exchange(node, exchange_id)
    if exchange.role != "responder":
        raise ActionError("not_ours", "only the coop that made the offer can withdraw it")
    target = _step(exchange, "withdraw", "responder")
    actor_url = node.urls.actor(actor.username)
    activity = agreements.build_withdraw(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        proposer=exchange.proposer,
        offer_id=exchange.offer_id,
    )
    moved = await _moved(
        node,
        exchange,
        event="withdraw",
        to_state=target,
        by_actor=actor_url,
        activity_id=activity["id"],
    )
    await send_activity(node, actor, activity)
    return moved


async def cancel(
    node: NodeContext, actor: LocalActor, exchange_id: int, reason: str = ""
) -> Exchange:
    """Either side calls an accepted exchange off."""
    exchange = await _exchange(node, exchange_id)
    target = _step(exchange, "cancel", exchange.role)
    actor_url = node.urls.actor(actor.username)
    activity_id = node.urls.activity(node.new_token())
    moved = await _moved(
        node,
        exchange,
        event="cancel",
        to_state=target,
        by_actor=actor_url,
        activity_id=activity_id,
        agreement=cancelled_agreement(exchange),
    )
    await send_cancellation(node, actor, moved, reason=reason, activity_id=activity_id)
    return moved


def cancelled_agreement(exchange: Exchange) -> dict[str, Any] | None:
    """The Agreement called off, as its owner (the proposer) states it in its Update.

    Both sides store this, so their records agree whoever cancelled.
    """
    if exchange.agreement is None or not isinstance(exchange.agreement.get("id"), str):
        return None
    return agreements.build_agreement(
        agreement_id=exchange.agreement["id"],
        owner=exchange.proposer,
        offer=exchange.offer,
        status="cancelled",
    )


async def send_cancellation(
    node: NodeContext,
    actor: LocalActor,
    exchange: Exchange,
    *,
    reason: str = "",
    activity_id: str | None = None,
) -> None:
    """The owner confirms with Update(Agreement cancelled); the responder sends Reject."""
    actor_url = node.urls.actor(actor.username)
    activity_id = activity_id or node.urls.activity(node.new_token())
    if exchange.role == "proposer":
        assert exchange.agreement is not None
        agreement = agreements.build_agreement(
            agreement_id=exchange.agreement["id"],
            owner=actor_url,
            offer=exchange.offer,
            status="cancelled",
        )
        await send_activity(
            node,
            actor,
            agreements.build_agreement_update(
                activity_id=activity_id,
                actor=actor_url,
                target=exchange.responder,
                agreement=agreement,
                updated=node.clock(),
            ),
        )
        if exchange.pledge and exchange.quantity:
            await refresh_progress(
                node, actor, exchange.proposal_uri, pledged=-exchange.quantity, received=Decimal(0)
            )
    else:
        assert exchange.agreement_uri is not None
        await send_activity(
            node,
            actor,
            agreements.build_reject(
                activity_id=activity_id,
                actor=actor_url,
                target=exchange.proposer,
                object_id=exchange.agreement_uri,
                reason=reason,
            ),
        )


async def complete(node: NodeContext, actor: LocalActor, exchange_id: int) -> Exchange:
    """The proposer confirms the exchange happened: a receipt with the economic events."""
    exchange = await _exchange(node, exchange_id)
    if exchange.role != "proposer":
        raise ActionError("not_ours", "the coop that published the proposal confirms completion")
    target = _step(exchange, "complete", "proposer")
    assert exchange.agreement is not None
    actor_url = node.urls.actor(actor.username)
    proposal = await node.store.get_proposal(exchange.proposal_uri)
    offering = proposal is not None and proposal.kind == "offer"
    receipt = agreements.build_receipt(
        activity_id=node.urls.activity(node.new_token()),
        receipt_id=node.urls.receipt(node.new_token()),
        actor=actor_url,
        target=exchange.responder,
        agreement=exchange.agreement,
        provider=actor_url if offering else exchange.responder,
        receiver=exchange.responder if offering else actor_url,
        action=proposal.action if proposal else "transfer",
        at=node.clock(),
    )
    moved = await _moved(
        node,
        exchange,
        event="complete",
        to_state=target,
        by_actor=actor_url,
        activity_id=receipt["id"],
        receipt=receipt["object"],
    )
    await send_activity(node, actor, receipt)
    if moved.pledge and moved.quantity:
        await refresh_progress(
            node, actor, moved.proposal_uri, pledged=Decimal(0), received=moved.quantity
        )
    return moved


async def rules(node: NodeContext) -> dict[str, bool]:
    return {
        name: bool(await node.store.get_rule(name, default))
        for name, default in RULE_DEFAULTS.items()
    }
