"""A coop's own proposals: publish, update, close, delete, and the progress of pledges.

``outbox.market`` (exchanges and rules) re-exports these, so callers keep using
``market.publish_proposal`` and friends.  Each checks its input before
anything is stored or sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from federation.context import NodeContext
from federation.display import unit_label_in
from federation.jobs import JobHandler
from federation.store import Job, LocalActor, Proposal
from federation.vocab import proposal_context
from outbox.build import build_update
from outbox.errors import ActionError, InvalidInput
from outbox.matching import record_matches
from outbox.proposals import ProposalSpec, build_proposal, validate_spec
from outbox.publish import delete_post, publish_object, update_object

CLOSE_PROPOSAL = "close_proposal"


def spec_of(p: Proposal) -> ProposalSpec:
    """The spec of a stored proposal (for rebuilding its object)."""
    return ProposalSpec(
        kind=p.kind,
        title=p.title,
        details=p.details,
        action=p.action,
        resource=p.resource,
        unit=p.unit or "one",
        unit_label=unit_label_in(p.body),
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
        "unit_label": current.unit_label,
        "quantity": current.quantity,
        "price": current.price,
        "currency": current.currency,
        "tags": list(current.tags),
        "deadline": current.deadline,
    }
    if "kind" in changes and changes["kind"] != current.kind:
        raise InvalidInput("kind", "cannot change; publish a new proposal instead")
    if changes.get("unit") not in (None, "one") and "unit_label" not in changes:
        raw["unit_label"] = None  # a label names counted goods only
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
