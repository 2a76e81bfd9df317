"""What a coop does in the marketplace: publish proposals, respond, and run exchanges.

The CLI, the C2S API, the inbox's automatic rules and the admin pages call
these functions; each checks the exchange state machine before anything is
stored or sent.  The coop's own proposals are in ``outbox.listings``,
re-exported here.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from federation.context import NodeContext
from federation.exchange import IllegalTransition, next_state
from federation.store import Exchange, LocalActor
from outbox import agreements
from outbox.errors import ActionError, InvalidInput
from outbox.fanout import send_activity
from outbox.listings import CLOSE_PROPOSAL as CLOSE_PROPOSAL
from outbox.listings import close_proposal as close_proposal
from outbox.listings import delete_proposal as delete_proposal
from outbox.listings import make_close_handler as make_close_handler
from outbox.listings import publish_proposal as publish_proposal
from outbox.listings import record_of as record_of
from outbox.listings import refresh_progress
from outbox.listings import spec_of as spec_of
from outbox.listings import update_proposal as update_proposal

log = logging.getLogger(__name__)

# auto_accept_pledges: pledges from coops we follow are accepted without a decision;
# auto_accept_pledges_from_anyone: ... and from anyone else too (off: they wait);
# cap_pledges: one pledge counts at most what is still missing of the target.
RULE_DEFAULTS: dict[str, bool] = {
    "auto_accept_pledges": True,
    "auto_accept_pledges_from_anyone": False,
    "cap_pledges": True,
    "auto_accept_offers": False,
}


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
